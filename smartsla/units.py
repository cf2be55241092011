"""Parsing and formatting of user-facing values.

Everything here is exact integer arithmetic: a value that cannot be
represented exactly in the on-chain unit is an error rather than silently
rounded, because a rounded SLA threshold or fee is a different contract from
the one the parties read.

Errors are :class:`UnitError` (a ``ValueError``) without a key path; the terms
loader adds the path.
"""

from __future__ import annotations

import re
from fractions import Fraction

from smartsla.constants import PPM, UINT32_MAX, UINT64_MAX

__all__ = [
    "UnitError",
    "PPM_PER_PERCENT",
    "BPS_PER_PERCENT",
    "DURATION_UNITS",
    "parse_percent_ppm",
    "parse_percent_bps",
    "parse_duration_seconds",
    "parse_duration_us",
    "parse_token_amount",
    "check_token_amount",
    "parse_score_ppm",
    "format_score",
    "parse_percentile",
    "format_ppm",
    "format_bps",
    "format_seconds",
    "format_us",
    "format_token_amount",
]


class UnitError(ValueError):
    """A user value that cannot be parsed exactly."""


PPM_PER_PERCENT = 10_000
BPS_PER_PERCENT = 100

# Seconds per unit. Fractions so that "250ms" stays exact.
DURATION_UNITS: dict[str, Fraction] = {
    "us": Fraction(1, 1_000_000),
    "µs": Fraction(1, 1_000_000),
    "ms": Fraction(1, 1_000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3_600),
    "d": Fraction(86_400),
    "w": Fraction(604_800),
}

# Overly long inputs are rejected up front so a hostile terms file cannot make
# us build enormous integers.
_MAX_LEN = 64
_NUMBER = r"(\d+(?:\.\d+)?)"
_PERCENT_RE = re.compile(rf"^{_NUMBER}%$")
_DURATION_RE = re.compile(rf"^{_NUMBER}(us|µs|ms|s|m|h|d|w)$")
_AMOUNT_RE = re.compile(rf"^{_NUMBER}$")


def _show(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)


def _require_text(value: object, what: str, example: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise UnitError(f"expected {what} as text such as {_show(example)}, got {_show(value)}")
    if len(value) > _MAX_LEN:
        raise UnitError(f"{what} is too long ({len(value)} characters)")
    return value


def parse_percent_ppm(text: object) -> int:
    """``"99.99%"`` -> ``999900`` parts per million; 0%..100%, exact to 1 ppm."""
    text = _require_text(text, "a percentage", "99.99%")
    m = _PERCENT_RE.match(text)
    if not m:
        raise UnitError(_percent_syntax_hint(text))
    ppm = Fraction(m.group(1)) * PPM_PER_PERCENT
    if ppm.denominator != 1:
        raise UnitError(
            f"{_show(text)} is finer than 1 ppm (0.0001%); use at most 4 decimals"
        )
    if ppm > PPM:
        raise UnitError(f"{_show(text)} is more than 100%")
    return int(ppm)


_SCORE_RE = re.compile(r"^(0|1)(?:\.(\d+))?$")


def parse_score_ppm(text: object) -> int:
    """An Apdex score ``"0.94"`` -> ``940000`` ppm; 0..1, exact to 1 ppm (at most 6 decimals)."""
    text = _require_text(text, "a score", "0.94")
    m = _SCORE_RE.match(text)
    if not m:
        if _PERCENT_RE.match(text):
            raise UnitError(f"{_show(text)} is a percentage; an Apdex score is a decimal from 0 to 1 such as \"0.94\"")
        raise UnitError(f"{_show(text)} is not a score; write a decimal from 0 to 1 such as \"0.94\"")
    score = Fraction(text)
    if score > 1:
        raise UnitError(f"{_show(text)} is more than 1, the best score")
    ppm = score * PPM
    if ppm.denominator != 1:
        raise UnitError(f"{_show(text)} is finer than 0.000001; use at most 6 decimals")
    return int(ppm)


def format_score(ppm: int) -> str:
    """``940000`` -> ``"0.94"`` (inverse of :func:`parse_score_ppm`)."""
    if ppm < 0:
        raise UnitError(f"negative score {ppm}")
    return _trim_decimal(ppm // PPM, ppm % PPM, 6)


# A percentile is written as a number (99, 99.9) or the same as text; 4 decimals (99.9999) are the finest that any
# month of 30 s samples can tell apart, and a bound keeps a hostile file from building huge fractions.
_PERCENTILE_RE = re.compile(r"^\d{1,3}(?:\.\d{1,4})?$")


def parse_percentile(value: object) -> Fraction:
    """``99`` or ``"99.9"`` -> the exact fraction P (0 < P <= 100) of the nearest-rank percentile."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UnitError(f"expected a percentile such as 99 or 99.9, got {_show(value)}")
    text = repr(value) if isinstance(value, float) else str(value)
    if not _PERCENTILE_RE.match(text):
        raise UnitError(f"{_show(value)} is not a percentile; write a number above 0 and at most 100 with at most "
                        "4 decimals, such as 99 or 99.9 (no % sign)")
    p = Fraction(text)
    if not 0 < p <= 100:
        raise UnitError(f"{_show(value)} is outside the percentiles: above 0 and at most 100")
    return p


def parse_percent_bps(text: object, *, maximum: int = UINT32_MAX) -> int:
    """``"10%"`` -> ``1000`` basis points; exact to 1 bps (0.01%)."""
    text = _require_text(text, "a percentage", "10%")
    m = _PERCENT_RE.match(text)
    if not m:
        raise UnitError(_percent_syntax_hint(text))
    bps = Fraction(m.group(1)) * BPS_PER_PERCENT
    if bps.denominator != 1:
        raise UnitError(
            f"{_show(text)} is finer than 1 basis point (0.01%); use at most 2 decimals"
        )
    if bps > maximum:
        raise UnitError(f"{_show(text)} is too large (at most {format_bps(maximum)})")
    return int(bps)


def _percent_syntax_hint(text: str) -> str:
    if _AMOUNT_RE.match(text.strip()):
        return f'{_show(text)} is not a percentage: add "%", e.g. "{text.strip()}%"'
    if text.strip() != text:
        return f"{_show(text)} has surrounding spaces; write it like \"99.99%\""
    if text.startswith("-"):
        return f"{_show(text)} must not be negative"
    return f'{_show(text)} is not a percentage; write it like "99.99%"'


def _parse_duration(text: object) -> Fraction:
    """A duration in seconds, as an exact fraction."""
    if isinstance(text, int) and not isinstance(text, bool):
        raise UnitError(
            f'{text} has no unit; write e.g. "{text}s", "{text}m", "{text}h" or "{text}d"'
        )
    text = _require_text(text, "a duration", "30d")
    m = _DURATION_RE.match(text)
    if not m:
        if _AMOUNT_RE.match(text):
            raise UnitError(
                f'{_show(text)} has no unit; write e.g. "{text}s", "{text}m", "{text}h" or "{text}d"'
            )
        if text.startswith("-"):
            raise UnitError(f"{_show(text)} must not be negative")
        raise UnitError(
            f"{_show(text)} is not a duration; write a number and one unit of "
            "ms, s, m, h, d, w (e.g. \"250ms\", \"4h\", \"30d\")"
        )
    return Fraction(m.group(1)) * DURATION_UNITS[m.group(2)]


def parse_duration_seconds(text: object, *, maximum: int = UINT64_MAX) -> int:
    """``"30d"`` -> ``2592000``; must be a whole number of seconds."""
    seconds = _parse_duration(text)
    if seconds.denominator != 1:
        raise UnitError(f"{_show(text)} is not a whole number of seconds")
    if seconds > maximum:
        raise UnitError(f"{_show(text)} is too long (at most {maximum} seconds)")
    return int(seconds)


def parse_duration_us(text: object, *, maximum: int = UINT32_MAX) -> int:
    """``"250ms"`` -> ``250000`` microseconds; whole µs, at most uint32 by default."""
    us = _parse_duration(text) * 1_000_000
    if us.denominator != 1:
        raise UnitError(f"{_show(text)} is not a whole number of microseconds")
    if us > maximum:
        raise UnitError(
            f"{_show(text)} is too long (at most {format_us(maximum)}, "
            "the largest uint32 number of microseconds)"
        )
    return int(us)


def check_token_amount(text: object) -> Fraction:
    """Syntax check of a token amount whose token decimals are not known yet."""
    if isinstance(text, bool) or isinstance(text, float):
        raise UnitError(
            f"{_show(text)}: write token amounts as quoted decimal text such as \"1000\" "
            "or \"0.5\", so they are exact"
        )
    if isinstance(text, int):
        if text < 0:
            raise UnitError(f"{text} must not be negative")
        return Fraction(text)
    text = _require_text(text, "a token amount", "1000")
    m = _AMOUNT_RE.match(text)
    if not m:
        if text.startswith("-"):
            raise UnitError(f"{_show(text)} must not be negative")
        raise UnitError(
            f"{_show(text)} is not a decimal amount; write it like \"1000\" or \"0.5\""
        )
    return Fraction(m.group(1))


def parse_token_amount(text: object, decimals: int) -> int:
    """``("0.5", 6)`` -> ``500000`` base units; exact, never negative.

    Trailing zeros beyond ``decimals`` are accepted because they do not change
    the value; any other extra digit is an error.
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 77:
        raise UnitError(f"token decimals must be an integer 0..77, got {decimals!r}")
    amount = check_token_amount(text)
    units = amount * 10**decimals
    if units.denominator != 1:
        digits = str(text).split(".", 1)[1].rstrip("0") if "." in str(text) else ""
        raise UnitError(
            f"{_show(text)} has {len(digits)} decimals but the token has only {decimals}"
        )
    return int(units)


def _trim_decimal(whole: int, frac: int, digits: int) -> str:
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_ppm(ppm: int) -> str:
    """``999900`` -> ``"99.99%"`` (inverse of :func:`parse_percent_ppm`)."""
    if ppm < 0:
        raise UnitError(f"negative ppm {ppm}")
    return _trim_decimal(ppm // PPM_PER_PERCENT, ppm % PPM_PER_PERCENT, 4) + "%"


def format_bps(bps: int) -> str:
    """``1000`` -> ``"10%"`` (inverse of :func:`parse_percent_bps`)."""
    if bps < 0:
        raise UnitError(f"negative bps {bps}")
    return _trim_decimal(bps // BPS_PER_PERCENT, bps % BPS_PER_PERCENT, 2) + "%"


def format_seconds(seconds: int) -> str:
    """``2592000`` -> ``"30d"``: the largest unit that divides exactly."""
    if seconds < 0:
        raise UnitError(f"negative duration {seconds}")
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m"):
        size = int(DURATION_UNITS[unit])
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def human_duration(seconds: float) -> str:
    """An approximate duration for people: ``579`` -> ``"9m 39s"``, ``200000`` -> ``"2d 7h"``."""
    seconds = int(round(seconds))
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(DURATION_UNITS[unit])
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


def format_us(us: int) -> str:
    """``300000`` -> ``"300ms"``, ``1000000`` -> ``"1s"``, ``1500`` -> ``"1500us"``."""
    if us < 0:
        raise UnitError(f"negative duration {us}")
    if us == 0:
        return "0ms"
    if us % 1_000_000 == 0:
        return format_seconds(us // 1_000_000)
    if us % 1_000 == 0:
        return f"{us // 1_000}ms"
    return f"{us}us"


def format_token_amount(units: int, decimals: int) -> str:
    """``(500000, 6)`` -> ``"0.5"`` (inverse of :func:`parse_token_amount`)."""
    if units < 0:
        raise UnitError(f"negative amount {units}")
    if decimals == 0:
        return str(units)
    return _trim_decimal(units // 10**decimals, units % 10**decimals, decimals)
