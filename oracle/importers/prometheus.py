"""Samples from a Prometheus server: one 0/1 series (``probe_success``, ``up``, ``x > bool 0.5``...) read
with the HTTP API's ``/api/v1/query_range``.

Each point of the series becomes a sample at the point's timestamp: 1 is UP, 0 is DOWN. A step where
the series has no value (no scrape within Prometheus' lookback, a staleness marker, NaN) yields no
sample, so the terms' gaps policy decides it, as for any other gap.

The whole range is fetched before anything is returned, and any doubt (a second series, a value that
is not 0 or 1, a partial answer) is an error: samples are append-only in the store, so a wrong import
can never be taken back.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from smartsla.constants import SERVICE_ID
from smartsla.measure.samples import Sample, Status

# Prometheus refuses a range query when (end - start) / step > 11,000; stay well under it.
MAX_POINTS_PER_REQUEST = 10_000
DEFAULT_TIMEOUT = 30.0

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class PrometheusError(Exception):
    """The server could not be asked, refused the query, or answered with something that is not one 0/1 series."""


def parse_step(text: str | float) -> float:
    """Seconds (``30``, ``0.5``) or a Prometheus duration (``30s``, ``1m30s``, ``500ms``) -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip()
        try:
            seconds = float(s)
        except ValueError:
            parts = _DURATION_PART.findall(s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise ValueError(f"step {text!r} is neither seconds nor a duration such as 30s or 1m30s") from None
            seconds = sum(int(n) * _UNIT_MS[u] for n, u in parts) / 1000
    if not math.isfinite(seconds) or seconds < 0.001:
        raise ValueError(f"step {text!r} must be at least 1 ms")
    return seconds


def chunks(start_ms: int, end_ms: int, step_ms: int,
           max_points: int = MAX_POINTS_PER_REQUEST) -> Iterator[tuple[int, int]]:
    """Split the evaluation grid ``start, start+step, ... <= end`` into ``(first, last)`` pieces of at
    most ``max_points`` points. Every piece starts on the original grid, so the pieces together
    evaluate exactly the points one big request would, none twice."""
    for first in range(start_ms, end_ms + 1, max_points * step_ms):
        yield first, min(first + (max_points - 1) * step_ms, end_ms)


def query_range_samples(base_url: str, query: str, service: str, start: float, end: float,
                        step: str | float = "30s", *, timeout: float = DEFAULT_TIMEOUT,
                        max_points: int = MAX_POINTS_PER_REQUEST) -> list[Sample]:
    """Evaluate ``query`` on ``[start, end]`` (unix seconds, both included) every ``step`` and return
    its points as samples of ``service``, sorted by time. The query must give exactly one series
    (add label matchers, or aggregate with ``min(...)``/``max(...)``); no series at all gives ``[]``."""
    if not SERVICE_ID.match(service):
        raise ValueError(f"service {service!r} is not a service id (lower-case letters, digits, '_' and '-', "
                         "at most 32)")
    if not query.strip():
        raise ValueError("the query is empty")
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"Prometheus URL {base_url!r}: expected http(s)://HOST:PORT[/prefix]")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"start {start} / end {end} must be finite unix seconds")
    # Integer milliseconds (Prometheus' own resolution) keep the chunk grid free of float drift.
    step_ms = round(parse_step(step) * 1000)
    start_ms, end_ms = round(start * 1000), round(end * 1000)
    if end_ms < start_ms:
        raise ValueError(f"end {end} is before start {start}")

    out: list[Sample] = []
    reason = f"prometheus: {query}"
    for point in _points(base_url, query, start_ms, end_ms, step_ms, timeout, max_points,
                         lambda seen: _several_series(seen, query)):
        ts, raw = _parsed(point)
        if math.isnan(raw):
            continue
        if raw not in (0.0, 1.0):
            raise PrometheusError(
                f"query {query!r} has value {point[1]} at {ts:.3f}; only 0 (down) and 1 (up) can be "
                "imported. Turn a measurement into 0/1 in PromQL, e.g. 'probe_success' or "
                "'probe_duration_seconds < bool 0.5'")
        out.append(Sample(ts, service, Status.UP if raw == 1.0 else Status.DOWN, None, reason))
    out.sort()
    return out


def _points(base_url: str, query: str, start_ms: int, end_ms: int, step_ms: int, timeout: float, max_points: int,
            several) -> Iterator[list]:
    """The ``[time, value]`` points of ``query``'s one series on the grid ``start, start+step, ... <= end`` (ms),
    in requests of at most ``max_points``; more than one series (``several(labels)`` says why that is refused), a
    histogram or anything but a matrix is a :class:`PrometheusError`."""
    endpoint = base_url.rstrip("/") + "/api/v1/query_range"
    labels: dict | None = None
    for first, last in chunks(start_ms, end_ms, step_ms, max_points):
        params = {"query": query, "start": _seconds(first), "end": _seconds(last), "step": _seconds(step_ms)}
        data = _get(endpoint, params, timeout)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusError(f"expected a matrix from query_range, got {data.get('resultType')!r}")
        seen = [] if labels is None else [labels]
        for series in data["result"]:
            metric = series.get("metric") or {}
            if metric not in seen:
                seen.append(metric)
        if len(seen) > 1:
            raise PrometheusError(several(seen))
        labels = seen[0] if seen else None
        for series in data["result"]:
            if "values" not in series:
                raise PrometheusError(f"query {query!r} gives a histogram series {_fmt(series.get('metric'))}; "
                                      "expected plain values")
            yield from series["values"]


def _parsed(point: object) -> tuple[float, float]:
    try:
        return float(point[0]), float(point[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError):
        raise PrometheusError(f"unreadable point {point!r} in the answer") from None


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _fmt(metric: object) -> str:
    if not isinstance(metric, dict) or not metric:
        return "{}"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _several_series(metrics: list[dict], query: str) -> str:
    shown = ", ".join(_fmt(m) for m in metrics[:5]) + (", ..." if len(metrics) > 5 else "")
    # Which series should decide (any probe down? all of them?) is a policy the importer must not guess.
    return (f"query {query!r} gives more than one series ({shown}); one service needs exactly one. "
            "Select one with label matchers, e.g. probe_success{job=\"api\",instance=\"...\"}, or combine "
            "them in PromQL: min(...) is down when any is down, max(...) only when all are")


def _get(endpoint: str, params: dict[str, str], timeout: float) -> dict:
    url = endpoint + "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        # Prometheus answers a bad query with 400/422 and a JSON error; anything else is not Prometheus.
        try:
            answer = json.loads(exc.read())
        except (ValueError, OSError):
            answer = None
        if isinstance(answer, dict) and answer.get("status") == "error":
            raise PrometheusError(f"Prometheus refused the query ({answer.get('errorType')}): "
                                  f"{answer.get('error')}") from None
        raise PrometheusError(f"HTTP {exc.code} {exc.reason} from {endpoint}; is the URL the root of a "
                              "Prometheus server (e.g. http://127.0.0.1:9090)?") from None
    except urllib.error.URLError as exc:
        raise PrometheusError(f"cannot reach Prometheus at {endpoint}: {_why(exc.reason, timeout)}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, a garbled HTTP answer
        raise PrometheusError(f"cannot read from Prometheus at {endpoint}: {_why(exc, timeout)}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise PrometheusError(f"{endpoint} did not answer JSON; is the URL the root of a Prometheus server?") from None
    if not isinstance(answer, dict) or answer.get("status") != "success" or not isinstance(answer.get("data"), dict):
        raise PrometheusError(f"unexpected answer from {endpoint}: {str(answer)[:200]}")
    if answer.get("warnings"):
        # A warning means a partial answer (e.g. a remote-read source failed); its holes would be
        # stored as gaps forever.
        raise PrometheusError(f"Prometheus answered with warnings (a partial result?): {answer['warnings']}")
    return answer["data"]


def _why(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def query_range_counts(base_url: str, query: str, start: int, end: int, step_seconds: int, *,
                       timeout: float = DEFAULT_TIMEOUT, max_points: int = MAX_POINTS_PER_REQUEST) -> dict[int, int]:
    """Evaluate a count expression (``sum(increase(requests_total[5m]))``) at ``start, start+step, ... <= end``
    (whole unix seconds): ``{evaluation time: count}``. The expression must give one series; a step without a
    value is left out (a gap in the counts, never a zero). Values are rounded to the nearest whole count
    (``increase`` extrapolates to the window's edges, so it is rarely whole); a negative or non-finite value is
    an error naming the time, since no count can be either."""
    if not query.strip():
        raise ValueError("the query is empty")
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"Prometheus URL {base_url!r}: expected http(s)://HOST:PORT[/prefix]")
    out: dict[int, int] = {}
    several = (lambda seen: f"query {query!r} gives more than one series ({', '.join(map(_fmt, seen[:5]))}); a "
               "count needs exactly one: aggregate it, e.g. sum(increase(...[5m]))")
    for point in _points(base_url, query, int(start) * 1000, int(end) * 1000, int(step_seconds) * 1000, timeout,
                         max_points, several):
        ts, raw = _parsed(point)
        if math.isnan(raw):
            continue
        if not math.isfinite(raw) or raw < -0.5:
            raise PrometheusError(f"query {query!r} has value {point[1]} at {ts:.3f}; a count is a "
                                  "finite number of 0 or more")
        if ts != int(ts):
            raise PrometheusError(f"query {query!r} answered a point at {ts:.3f}, off the whole-second "
                                  "grid it was asked for")
        out[int(ts)] = max(0, round(raw))
    return out
