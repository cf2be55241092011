"""The chains every contract and client test runs on: the embedded one, and a real anvil (marked, so
``-m "not anvil"`` gives a quick run). Defined once here."""

from __future__ import annotations

import pytest

CHAINS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]
