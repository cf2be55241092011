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


# The one status table. Columns, evidence records and the store's reads all code a status by its position here,
# and the order is also the tie-break for samples of one service at the same time (docs/oracle.md): never change it.
STATUS_NAMES: tuple[str, ...] = ("up", "down", "unknown")
UP, DOWN, UNKNOWN = range(len(STATUS_NAMES))
STATUS_CODE: dict[Status, int] = {Status(name): code for code, name in enumerate(STATUS_NAMES)}
STATUS_OF_CODE: tuple[Status, ...] = tuple(Status(name) for name in STATUS_NAMES)


def status_sql(column: str = "status", otherwise: int | None = None) -> str:
    """The table as an SQL expression from a stored status name to its code; a name outside the table gives
    ``otherwise`` (NULL when None)."""
    cases = " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(STATUS_NAMES))
    return f"CASE {column} {cases} ELSE {'NULL' if otherwise is None else int(otherwise)} END"


@dataclass(frozen=True, order=True)
class Sample:
    time: float            # unix seconds (UTC), sub-second precision allowed
    service: str           # a service id of the terms
    status: Status
    latency_ms: float | None = None
    reason: str = ""       # short: "200 in 12 ms", "timeout after 5 s", "keyword missing", "control check failed"
