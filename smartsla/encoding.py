"""Small conversions that cross a boundary (the ABI, files, the store), each with one error policy.

A leaf like :mod:`smartsla.constants`: it imports nothing else of the project.
"""

from __future__ import annotations

import math
import re
import datetime as _dt
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils import is_checksum_address, to_checksum_address

from smartsla.constants import ADDRESS_RE, US_PER_SECOND


def to_hex(data: bytes | str) -> str:
    """``0x``-prefixed hex of raw bytes (hashes, roots, signatures, transaction hashes); text that RPC answers
    already give as hex only gains the prefix it may lack."""
    if isinstance(data, str):
        return data if data.startswith("0x") else "0x" + data
    return "0x" + bytes(data).hex()


def seconds_to_us(seconds: float) -> int:
    """Unix seconds (possibly fractional) to integer microseconds, rounded to the nearest."""
    return round(seconds * US_PER_SECOND)


def address_key(text: str) -> str:
    """One spelling per address for keys and comparisons (lower case); anything that is not an address is kept.

    The same contract written with and without its checksum must be one key, or a "never sign twice" promise
    keyed by it could be dodged by a change of case."""
    text = str(text)
    return text.lower() if ADDRESS_RE.match(text) else text


class BadAddress(ValueError):
    """Text given as an address that is not one; the message names the fix."""


def checked_address(text: str, what: str) -> str:
    """``text`` as a checksummed address. Mixed case is an EIP-55 checksum, there to catch typos, so a mixed-case
    address whose checksum fails is refused rather than quietly accepted (all lower or upper case carries none)."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not ADDRESS_RE.match(value):
        raise BadAddress(f"{what} {text!r} is not an address (0x and 40 hex digits)")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise BadAddress(f"{what} {value} has a wrong EIP-55 checksum (its mixed case does not match: a typo?); copy "
                         "it again, or write it all in lower case to skip the check")
    return to_checksum_address(value)


def service_bytes32(name: str) -> bytes:
    """A service id as the contracts hold it: UTF-8, right-padded to 32 bytes. ValueError if it does not fit."""
    raw = name.encode("utf-8")
    if len(raw) > 32:
        raise ValueError(f"service id {name!r} is longer than 32 bytes")
    return raw.ljust(32, b"\0")


def service_name(raw: bytes) -> str:
    """The readable id of a bytes32 service id; bytes that are not UTF-8 are shown escaped, never dropped."""
    return bytes(raw).rstrip(b"\0").decode("utf-8", errors="backslashreplace")


def abi_type(component: dict[str, Any]) -> str:
    """The canonical ABI type string of one ABI input/output entry, tuples spelled out: ``(uint32,uint32)[]``."""
    kind = component["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in component["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


class NoTimeZone(ValueError):
    """An ISO-8601 time without a zone: refused, never read as local time (the same file must mean the same
    instant on every machine)."""


def parse_iso_time(text: str) -> float:
    """ISO-8601 with a zone (``Z`` or ``+01:00``) as unix seconds; ValueError, or :class:`NoTimeZone`."""
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise NoTimeZone(f"time {text!r} has no time zone; add Z for UTC or an offset such as +01:00")
    return parsed.timestamp()


def parse_time_in_zone(text: str, zone: Any) -> float:
    """ISO-8601 (``2022-01-01 12:00:00``) as unix seconds, read in the IANA ``zone`` (``America/New_York``) when
    the text states no offset of its own; ValueError for a bad time or zone."""
    parsed = datetime.fromisoformat(str(text).strip().replace(" ", "T", 1).replace("z", "Z"))
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(str(zone)))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not an IANA time zone such as America/New_York") from None
    return parsed.timestamp()


_FRACTION = re.compile(r"^[^.]*\d\.(\d+)(?:[zZ]|[+-]\d\d:?\d\d)?$")


def _refuse_finer_than_us(text: str) -> None:
    """Samples are placed to the microsecond, the oracle's resolution everywhere: a time with finer digits (10 ns
    before a slice edge, say) would be rounded onto the edge and counted in the later slice, so it is refused."""
    m = _FRACTION.match(text)
    if m and len(m.group(1)) > 6 and m.group(1)[6:].strip("0"):
        raise ValueError(f"time {text!r} is finer than a microsecond; the oracle places samples to the microsecond: "
                         "give at most 6 decimals")


def parse_time(text: object, *, exact_us: bool = False) -> float:
    """Unix seconds (a number, or its text) or ISO-8601 with a zone (``Z`` or ``+01:00``), as unix seconds.

    A time without a zone is refused, never read as local time: the same file must mean the same instant on
    every machine. ValueError names the value and the fix."""
    if isinstance(text, bool):  # JSON true is an int to Python; still not a time
        raise ValueError(f"time {text!r} is not a number or an ISO-8601 date")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip()
        if exact_us:  # a sample's time (not a range bound): its place in a slice must not be rounded
            _refuse_finer_than_us(s)
        try:
            value = float(s)
        except ValueError:
            try:
                value = parse_iso_time(s)
            except NoTimeZone:
                raise
            except ValueError:
                raise ValueError(f"time {s!r} is neither unix seconds nor ISO-8601 (e.g. 2027-01-01T00:00:00Z)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time {text!r} is not a time after 1970")
    return value


def format_time_us(time_us: int) -> str:
    """Unix microseconds as ISO-8601 UTC for messages: ``2027-01-01T00:05:00Z`` (microseconds only when there are
    any), the form the time columns accept back."""
    seconds, micro = divmod(int(time_us), 1_000_000)
    text = _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"
