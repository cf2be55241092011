"""One measurement of one service: the unit every other part of the oracle works on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    UP = "up"
    DOWN = "down"
    # The oracle could not see anything (its own control check failed, or no answer it can judge):
    # never counted as the service being down.
    UNKNOWN = "unknown"


@dataclass(frozen=True, order=True)
class Sample:
    time: float            # unix seconds (UTC), sub-second precision allowed
    service: str           # a service id of the terms
    status: Status
    latency_ms: float | None = None
    reason: str = ""       # short: "200 in 12 ms", "timeout after 5 s", "keyword missing", "control check failed"
