"""End-to-end: the commands as separate processes against a persistent node, with real oracle daemons."""

from __future__ import annotations

import pytest

from tests.helpers.devnode import DevNode


@pytest.fixture
def devnode(tmp_path):
    node = DevNode(tmp_path / "home")
    node.run("node", "start", "--block-time", "1")
    try:
        yield node
    finally:
        node.run("node", "stop", check=False)
