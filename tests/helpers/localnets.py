"""A local network with the one HTTP service its agreement measures, and a fixture body that closes every network a
test made: what the real-time oracle tests (tests/e2e, tests/faults) share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from oracle.devnet.localnet import LocalNet
from oracle.devnet.targets import HttpTarget

Net = TypeVar("Net", bound=LocalNet)


class ServedNet(LocalNet):
    """:class:`LocalNet` and a local HTTP service (``target``) for its agreement; :meth:`close` stops both."""

    def __init__(self, tmp_path: Path, artifacts: Any):
        super().__init__(tmp_path, artifacts)
        self.target = HttpTarget().start()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.target.stop()


@contextmanager
def closing_all(build: Callable[..., Net]) -> Iterator[Callable[..., Net]]:
    """``make(**kw)`` builds a network with ``build``; every network made is closed at the end, failures included."""
    made: list[Net] = []

    def make(**kw: Any) -> Net:
        made.append(build(**kw))
        return made[-1]

    try:
        yield make
    finally:
        for net in made:
            net.close()
