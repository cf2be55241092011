"""The audit as one self-contained HTML file for people: the verdicts, each service's value against its target per
period, the credit per period, and the money flows. Plots are inline SVG drawn here (no plotting dependency)."""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartsla.audit.findings import AuditReport, money_formatter
from smartsla.encoding import to_hex

WIDTH, HEIGHT = 760, 280
PAD_R, PAD_T, PAD_B = 20, 16, 40
COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "SKIP": "#9a6700"}
SERIES = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#57606a"]


def render(report: AuditReport) -> str:
    h = report.history
    money = money_formatter(report.token)
    named = f"{report.name} " if report.name else ""
    parts = [_HEAD.format(title=html.escape(f"Audit of {named}{report.agreement}"))]
    verdict = "PASS" if report.ok else "FAIL"
    counts = report.counts()
    parts.append(f"<h1>Audit of {html.escape(named)}<code>{report.agreement}</code> "
                 f"<span class='badge' style='background:{COLOURS[verdict]}'>{verdict}</span></h1>")
    if h is not None:
        terms = h.terms
        rows = [("chain id", h.chain_id), ("factory", h.factory),
                ("created", f"block {h.created_block}, {_time(h.created_at)}, by {h.created_by}"),
                ("provider", terms.provider), ("customer", terms.customer),
                ("token", "ETH" if h.agreement.is_eth else terms.token), ("fee per period", money(terms.fee)),
                ("periods", f"{terms.period_count} of {terms.period_length} s from {_time(terms.start)}"),
                ("oracles", f"{terms.quorum} of {len(terms.oracles)}: " + ", ".join(terms.oracles)),
                ("document hash", to_hex(h.document_hash)), ("read up to block", h.to_block)]
        parts.append("<table class='facts'>" + "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>")
    parts.append(f"<p>{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped; audited in "
                 f"{report.timings.get('total', 0):.2f} s.")
    if report.replay:
        r = report.replay
        parts.append(f" Replay: {r['transactions']} transactions in {r['replay_seconds']:.2f} s "
                     f"({r['transactions_per_second']} tx/s).")
    parts.append("</p>")

    parts.append("<h2>Findings</h2><table class='findings'><tr><th>verdict</th><th>check</th><th>subject</th>"
                 "<th>detail</th></tr>")
    for f in sorted(report.findings, key=lambda f: {"FAIL": 0, "SKIP": 1, "PASS": 2}[f.verdict]):
        parts.append(f"<tr><td style='color:{COLOURS[f.verdict]};font-weight:bold'>{f.verdict}</td>"
                     f"<td>{html.escape(f.check)}</td><td>{html.escape(f.subject)}</td>"
                     f"<td>{html.escape(f.detail)}</td></tr>")
    parts.append("</table>")

    if h is not None:
        parts.append("<h2>Services: value against target per period</h2>")
        parts.extend(_service_plots(report))
        if report.combined:
            parts.append(_combined_table(report.combined))
        parts.append("<h2>Credit per period</h2>")
        parts.append(_credit_plot(h))
        parts.append("<h2>Money</h2>")
        parts.append(_money_plot(h, report.token))
        t = h.totals()
        parts.append("<table class='facts'>" + "".join(
            f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(money(v))}</td></tr>"
            for k, v in t.items()) + "</table>")
        parts.append("<h2>Maintenance</h2>")
        parts.append(_maintenance(h))
    parts.append("</body></html>\n")
    return "".join(parts)


# ---------------------------------------------------------------- plots
#
# Every period plot has one x slot per period (index 0 .. periodCount-1, centred on the integer, labelled only at
# integers); the y axis gets "nice" ticks (1, 2 or 5 x 10^n) over a range that holds the target and every point
# with a margin, so 99.95% against a target of 99.9% stays readable. Periods without values are shaded, not drawn
# at 0: grey when not settled, amber when settled by the fallback (no values reported).

NOT_SETTLED = "#eaeef2"
NO_VALUES = "#fff1c2"
FALLBACK = "#9a6700"
TEXT = "#1f2328"
CHAR_W = 6.4  # the width of a character at font-size 11, roughly, for laying out labels


@dataclass
class _Series:
    name: str
    colour: str
    points: list[tuple[float, float]]  # (x, y) in the axes' units
    style: str                         # line | dots | cross | bars | steps
    dash: str = ""
    offset: float = 0.0                # horizontal offset in px (several oracles' dots side by side)
    hollow: frozenset[float] = frozenset()  # x values drawn as outlines (settled unfunded)
    tips: dict[float, str] = field(default_factory=dict)  # x -> extra tooltip text


@dataclass
class _Axis:
    lo: float
    hi: float
    ticks: list[tuple[float, str]]
    label: str
    minor: list[float] = field(default_factory=list)


@dataclass
class _Band:
    x: int
    colour: str
    tip: str


def _period_status(h: Any, p: int) -> tuple[str, str]:
    """(kind, words) of period ``p``: settled, unfunded (settled, no money moved), novalues (fallback, or an
    unfunded period settled by the fallback), or open (not settled: not due yet, refunded or cut off)."""
    s = h.settlements.get(p)
    if s is None:
        if p in h.refunded_periods():
            return "open", "not settled: refunded at the termination"
        if h.terminated is not None and p >= h.active_periods():
            return "open", "not settled: cut off by the termination"
        return "open", "not settled"
    if not s.values:
        return "novalues", "settled by the fallback, no values" + ("" if s.funded else " (unfunded, no money moved)")
    if not s.funded:
        return "unfunded", "settled unfunded: no money moved"
    return "settled", "settled"


def _bands(h: Any) -> list[_Band]:
    out = []
    for p in range(h.terms.period_count):
        kind, words = _period_status(h, p)
        if kind == "open":
            out.append(_Band(p, NOT_SETTLED, f"period {p}: {words}"))
        elif kind == "novalues":
            out.append(_Band(p, NO_VALUES, f"period {p}: {words}"))
    return out


def _band_legend(bands: Sequence[_Band]) -> list[tuple[str, str, str, str]]:
    colours = {b.colour for b in bands}
    out = []
    if NO_VALUES in colours:
        out.append(("band", NO_VALUES, "settled by fallback (no values)", ""))
    if NOT_SETTLED in colours:
        out.append(("band", NOT_SETTLED, "not settled", ""))
    return out


def _service_plots(report: AuditReport) -> list[str]:
    h = report.history
    out = []
    services = h.terms.services
    count = h.terms.period_count
    bands = _bands(h)
    xaxis = _period_axis(count)
    oracles = sorted({r.oracle for s in h.settlements.values() for r in s.reports} |
                     {o for _p, o in report.evidence_values})
    for i, service in enumerate(services):
        sid, target, lower = service.name, service.target, service.lower_is_better
        words = report.objectives[i] if report.objectives else ("latency" if lower else "availability")
        score = words.startswith("apdex")
        scale, unit = (1000, "ms") if lower else (1_000_000, "") if score else (10_000, "%")

        def v(raw: float, scale: float = scale) -> float:
            return raw / scale

        used, hollow, tips = [], set(), {}
        oracle_points: dict[str, list[tuple[float, float]]] = {o: [] for o in oracles}
        for p, s in sorted(h.settlements.items()):
            if s.values:
                used.append((p, v(s.values[i])))
                if not s.funded:
                    hollow.add(p)
                    tips[p] = "settled unfunded: no money moved"
            for r in s.reports:
                oracle_points[r.oracle].append((p, v(r.values[i])))
        recomputed: dict[str, list[tuple[float, float]]] = {}
        for (p, o), values in sorted(report.evidence_values.items()):
            if sid in values:
                recomputed.setdefault(o, []).append((p, v(values[sid])))
        n = len(oracles)
        spread = min(4.0, _slot_px(xaxis) * 0.12)
        series = [_Series("used (median)", SERIES[0], used, "line", hollow=frozenset(hollow), tips=tips)]
        palette = [SERIES[2], SERIES[3], SERIES[4], SERIES[5], "#bf8700", "#1b7c83"]
        crosses = []
        for j, oracle in enumerate(oracles):
            offset = (j - (n - 1) / 2) * spread  # each oracle's marks side by side, its recomputed value on them
            if oracle_points[oracle]:
                series.append(_Series(f"oracle {oracle[:8]}…", palette[j % len(palette)], oracle_points[oracle],
                                      "dots", offset=offset))
            if recomputed.get(oracle):
                crosses.append(_Series("" if crosses else "recomputed from evidence", TEXT, recomputed[oracle],
                                       "cross", offset=offset))
        series += crosses
        values = [y for s in series for _x, y in s.points] + [v(target)]
        if lower:
            yaxis = _value_axis(values, floor=0, min_span=1.0, unit=" ms", label=f"{words} (ms, lower is better)")
        elif score:
            yaxis = _value_axis(values, floor=0, ceiling=1, min_span=0.0001, unit="", label=f"{words} (score)")
        else:
            yaxis = _value_axis(values, floor=0, ceiling=100, min_span=0.01, unit="%", label=f"{words} (%)")
        tiers = [v(t.threshold) for t in service.tiers]
        fmt = _ms if lower else _score if score else _pct
        hlines = [(t, "credit tier", "#8c959f", "2,3") for t in tiers if yaxis.lo <= t <= yaxis.hi and t != v(target)]
        hlines.append((v(target), f"target {fmt(target)}", "#cf222e", "6,3"))
        out.append(f"<h3>{html.escape(sid)} ({html.escape(words)}, target {fmt(target)})</h3>")
        out.append(_chart(series, xaxis, yaxis, hlines=hlines, bands=bands,
                          x_tip=lambda x: f"period {int(x)}", y_fmt=lambda y, u=unit: _num(y, u)))
    return out


def _combined_table(c: dict) -> str:
    """The combined number per settled period: the one that decided the credit, or one shown beside the services'."""
    role = ("it decided each period's credit (basis combined)" if c["decides_credit"]
            else "shown only: each service's own credit decided (basis per-service)")
    target = f", target {html.escape(c['target'])}" if c["target"] else ""
    rows = "".join(f"<tr><td>{p}</td><td>{html.escape(v)}</td></tr>" for p, v in c["periods"].items())
    return (f"<h3>combined ({html.escape(c['how'])}) {html.escape(c['objective'])}{target}</h3>"
            f"<p>{role}</p><table class='facts'><tr><th>period</th><th>combined</th></tr>{rows}</table>")


def _credit_plot(h: Any) -> str:
    bands = _bands(h)
    xaxis = _period_axis(h.terms.period_count)
    normal, fallback = [], []
    hollow = set()
    for p, s in sorted(h.settlements.items()):
        (fallback if s.by_fallback or not s.values else normal).append((p, s.credit_bps / 100))
        if not s.funded:
            hollow.add(p)
    tips = {p: "settled unfunded: no money moved" for p in hollow}
    top = max([y for _x, y in normal + fallback] + [100])
    yaxis = _value_axis([0, top], floor=0, min_span=1, unit="%", label="credit (% of the fee)", margin=0)
    series = [_Series("credit, from reports", SERIES[4], normal, "bars", hollow=frozenset(hollow), tips=tips)]
    if fallback:
        series.append(_Series("credit, by fallback", FALLBACK, fallback, "bars", hollow=frozenset(hollow), tips=tips))
    extra = [("bar-hollow", SERIES[4], "settled unfunded (no money moved)", "")] if hollow else []
    return _chart(series, xaxis, yaxis, bands=[b for b in bands if b.colour == NOT_SETTLED], extra_legend=extra,
                  x_tip=lambda x: f"period {int(x)}", y_fmt=lambda y: _num(y, "%"))


def _maintenance(h: Any) -> str:
    """The announced windows on the agreement's time line (period boundaries marked), and as a table."""
    windows = sorted(h.maintenance)
    if not windows:
        return "<p>No maintenance was announced.</p>"
    terms = h.terms
    t0, t1 = terms.start, h.agreement.period_end(terms.period_count - 1)
    t0, t1 = min([t0] + [s for s, _e in windows]), max([t1] + [e for _s, e in windows])
    left, right, height = 50, WIDTH - PAD_R, 70

    def x(t: float) -> float:
        return left + (t - t0) / max(1, t1 - t0) * (right - left)

    svg = [f"<svg width='{WIDTH}' height='{height}' role='img' aria-label='maintenance windows'>",
           f"<line x1='{left}' y1='30' x2='{right}' y2='30' stroke='#57606a'/>"]
    step = max(1, math.ceil(terms.period_count / 12))  # at most about a dozen labels
    for p in range(terms.period_count + 1):
        px = x(h.agreement.period_start(p)) if p < terms.period_count else x(h.agreement.period_end(p - 1))
        svg.append(f"<line x1='{px:.1f}' y1='22' x2='{px:.1f}' y2='38' stroke='#8c959f'/>")
        if p < terms.period_count and p % step == 0:
            svg.append(f"<text x='{px + 2:.1f}' y='54' font-size='10' fill='#57606a'>period {p}</text>")
    rows = []
    for start, end in windows:
        period = (start - terms.start) // terms.period_length if start >= terms.start else None
        label = f"{_time(start)} .. {_time(end)} ({end - start} s)"
        svg.append(f"<rect x='{x(start):.1f}' y='16' width='{max(2.0, x(end) - x(start)):.1f}' height='28' "
                   f"fill='{SERIES[4]}' opacity='0.8'><title>maintenance {html.escape(label)}</title></rect>")
        rows.append(f"<tr><td>{'-' if period is None else period}</td><td>{_time(start)}</td><td>{_time(end)}</td>"
                    f"<td>{end - start} s</td></tr>")
    svg.append("</svg>")
    allowance = f"allowance {terms.maintenance_allowance} s per period, notice {terms.maintenance_notice} s"
    return ("".join(svg) + f"<p>{len(windows)} window(s); {allowance}; the oracles count none of their slices.</p>"
            "<table><tr><th>period</th><th>start</th><th>end</th><th>length</th></tr>" + "".join(rows) + "</table>")


def _money_plot(h: Any, token: tuple[str, int] | None = None) -> str:
    """Cumulative escrowed, paid to the customer, paid to the provider, and held, over time (event by event)."""
    escrowed = to_customer = to_provider = 0
    series: dict[str, list[tuple[float, float]]] = {"escrowed": [], "paid to customer": [], "paid to provider": [],
                                                     "held": []}
    withdrawn = deferred = 0
    for e in h.events:
        a = e.args
        if e.name == "Funded" or e.name == "BondPosted":
            escrowed += a["amount"]
        elif e.name == "PeriodSettled":
            to_customer += a["compensation"]
            to_provider += a["providerPayout"]
        elif e.name == "Terminated":
            to_customer += a["refund"]
        elif e.name == "Closed":
            to_provider += a["bondReturned"]
        elif e.name == "PaymentDeferred":
            deferred += a["amount"]
        elif e.name == "Withdrawn":
            withdrawn += a["amount"]
        else:
            continue
        held = escrowed - to_customer - to_provider + deferred - withdrawn
        for name, value in (("escrowed", escrowed), ("paid to customer", to_customer),
                            ("paid to provider", to_provider), ("held", held)):
            pts = series[name]
            if pts and pts[-1][0] == e.timestamp:
                pts[-1] = (e.timestamp, value)  # several events in one block: the state after the last
            else:
                pts.append((e.timestamp, value))
    if not series["escrowed"]:
        return "<p>No money has moved.</p>"
    top = max(y for pts in series.values() for _x, y in pts) or 1
    if token is not None and (not h.agreement.is_eth or top >= 10**12):
        divisor, unit, short = 10**token[1], token[0], f" {token[0]}"
    else:  # a token without metadata: base units, scaled by a power of 1000
        power = (len(str(int(top))) - 1) // 3 * 3
        divisor = 10**power
        scale = f"×10{str(power).translate(str.maketrans('0123456789', '⁰¹²³⁴⁵⁶⁷⁸⁹'))} " if power else ""
        unit = scale + ("wei" if h.agreement.is_eth else "base units of the token")
        short = " " + scale + ("wei" if h.agreement.is_eth else "base units")
    xs = [x for pts in series.values() for x, _y in pts]
    t0, t1 = min(xs), max(xs)
    xaxis = _time_axis(t0, t1)
    scaled = {n: [(x, y / divisor) for x, y in pts] for n, pts in series.items()}
    yaxis = _value_axis([0, top / divisor], floor=0, min_span=1e-6, unit="", label=f"amount ({unit})", margin=0.04)
    styles = {"escrowed": ("#0969da", "6,3"), "paid to customer": ("#cf222e", ""),
              "paid to provider": ("#1a7f37", ""), "held": ("#8250df", "")}
    order = ["held", "paid to customer", "paid to provider", "escrowed"]  # the dashed line on top
    return _chart([_Series(n, styles[n][0], scaled[n], "steps", dash=styles[n][1]) for n in order], xaxis, yaxis,
                  x_tip=lambda x: _time(int(x)), y_fmt=lambda y: _num(y, short), legend_order=list(series))


# ---------------------------------------------------------------- axes


def _nice_step(span: float, max_ticks: int) -> float:
    raw = span / max(1, max_ticks)
    exp = math.floor(math.log10(raw)) if raw > 0 else 0
    for m in (1, 2, 5, 10):
        step = m * 10.0 ** exp
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exp + 1)


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _value_axis(values: Sequence[float], *, floor: float | None = None, ceiling: float | None = None,
                min_span: float, unit: str, label: str, margin: float = 0.08, max_ticks: int = 5) -> _Axis:
    """A range holding ``values`` with a margin, widened to ``min_span``, ends on nice ticks; never below
    ``floor``, nor above ``ceiling`` when every value is at most that."""
    lo, hi = min(values), max(values)
    data_hi = hi
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = (hi - lo) * margin
    lo, hi = lo - pad, hi + pad
    if floor is not None and min(values) >= floor:
        lo = max(lo, floor)
    if ceiling is not None and data_hi <= ceiling:
        hi = min(hi, ceiling)
        lo = min(lo, hi - min_span)
    step = _nice_step(hi - lo, max_ticks)
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if hi <= lo:
        hi = lo + step
    d = _decimals(step)
    ticks = []
    k = 0
    while lo + k * step <= hi + step * 1e-6:
        value = round(lo + k * step, d + 2)
        ticks.append((value, _num(value, unit, d)))
        k += 1
    return _Axis(lo, hi, ticks, label)


def _period_axis(count: int) -> _Axis:
    """Slots -0.5 .. count-0.5; a label at every k-th period (k = 1, 2, 5, 10, ...) so labels do not overlap,
    a small tick at every period."""
    plot_w = WIDTH - PAD_R - 80
    width = CHAR_W * len(str(max(count - 1, 0))) + 14
    most = max(1, int(plot_w // width))
    k = 1
    while count / k > most:
        k = next(m * 10 ** e for e in range(12) for m in (1, 2, 5) if m * 10 ** e > k)
    ticks = [(float(p), str(p)) for p in range(0, count, k)]
    minor = [float(p) for p in range(count)] if count <= plot_w / 4 else []
    return _Axis(-0.5, max(count, 1) - 0.5, ticks, "period", minor)


_TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 2 * 86_400,
               7 * 86_400, 14 * 86_400]


def _time_axis(t0: int, t1: int) -> _Axis:
    span = max(t1 - t0, 60)
    lo, hi = t0 - span * 0.03, t1 + span * 0.03
    plot_w = WIDTH - PAD_R - 80
    same_day = _time(int(lo))[:10] == _time(int(hi))[:10]
    for step in _TIME_STEPS:
        fmt = "%H:%M" if same_day else ("%m-%d %H:%M" if step < 86_400 else "%Y-%m-%d")
        if (hi - lo) / step <= plot_w / (CHAR_W * len(_strf(0, fmt)) + 16):
            ticks = [(float(t), _strf(t, fmt)) for t in range(math.ceil(lo / step) * step, int(hi) + 1, step)]
            break
    else:  # months
        first = _dt.datetime.fromtimestamp(int(lo), _dt.UTC)
        months = (hi - lo) / (30.44 * 86_400)
        every = next(m for m in (1, 2, 3, 6, 12, 24, 60, 120, 1200) if months / m <= plot_w / (CHAR_W * 7 + 16))
        fmt = "%Y-%m" if every < 12 else "%Y"
        y, m = first.year, first.month
        ticks = []
        while True:
            m += 1
            if m > 12:
                y, m = y + 1, 1
            if (y * 12 + m - 1) % every:
                continue
            t = _dt.datetime(y, m, 1, tzinfo=_dt.UTC).timestamp()
            if t > hi:
                break
            if t >= lo:
                ticks.append((t, _strf(t, fmt)))
    label = f"time (UTC, {_time(int(lo))[:10]})" if same_day else "time (UTC)"
    return _Axis(lo, hi, ticks, label)


def _strf(t: float, fmt: str) -> str:
    return _dt.datetime.fromtimestamp(int(t), _dt.UTC).strftime(fmt)


def _num(value: float, unit: str, decimals: int | None = None) -> str:
    """``value`` with thousands separators and ``decimals`` decimals (None: as many as it needs, up to 6)."""
    if decimals is None:
        text = f"{value:,.6f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,.{decimals}f}"
    return ("0" if text in ("-0", "") else text) + unit


def _slot_px(axis: _Axis) -> float:
    return (WIDTH - PAD_R - 80) / max(axis.hi - axis.lo, 1)


# ---------------------------------------------------------------- drawing


def _chart(series: Sequence[_Series], xaxis: _Axis, yaxis: _Axis, *, x_tip: Callable[[float], str],
           y_fmt: Callable[[float], str], hlines: Sequence[tuple[float, str, str, str]] = (),
           bands: Sequence[_Band] = (), extra_legend: Sequence[tuple[str, str, str, str]] = (),
           legend_order: Sequence[str] | None = None) -> str:
    pad_l = int(max(CHAR_W * len(label) for _v, label in yaxis.ticks) + 8 + 22)
    w, hgt = WIDTH - pad_l - PAD_R, HEIGHT - PAD_T - PAD_B
    x0, x1, y0, y1 = xaxis.lo, xaxis.hi, yaxis.lo, yaxis.hi

    def X(x: float) -> float:
        return pad_l + (x - x0) / ((x1 - x0) or 1) * w

    def Y(y: float) -> float:
        return PAD_T + (1 - (y - y0) / ((y1 - y0) or 1)) * hgt

    def clip(y: float) -> float:
        return min(max(y, y0), y1)

    body = [f"<rect x='{pad_l}' y='{PAD_T}' width='{w}' height='{hgt}' fill='#fff' stroke='#d0d7de'/>"]
    slot = w / ((x1 - x0) or 1)
    for b in bands:
        body.append(f"<rect x='{X(b.x - 0.5):.1f}' y='{PAD_T}' width='{slot:.1f}' height='{hgt}' fill='{b.colour}'>"
                    f"<title>{html.escape(b.tip)}</title></rect>")
    for value, label in yaxis.ticks:
        body.append(f"<line x1='{pad_l}' x2='{pad_l + w}' y1='{Y(value):.1f}' y2='{Y(value):.1f}' stroke='#eee'/>"
                    f"<text class='ytick' x='{pad_l - 5}' y='{Y(value) + 4:.1f}' text-anchor='end'>"
                    f"{html.escape(label)}</text>")
    for x in xaxis.minor:
        body.append(f"<line x1='{X(x):.1f}' x2='{X(x):.1f}' y1='{PAD_T + hgt}' y2='{PAD_T + hgt + 3}' "
                    "stroke='#8c959f'/>")
    for x, label in xaxis.ticks:
        body.append(f"<line x1='{X(x):.1f}' x2='{X(x):.1f}' y1='{PAD_T + hgt}' y2='{PAD_T + hgt + 5}' "
                    f"stroke='{TEXT}'/>")
        if X(x) + CHAR_W * len(label) / 2 <= WIDTH:  # a label that would be cut off at the right edge is left out
            body.append(f"<text class='xtick' x='{X(x):.1f}' y='{PAD_T + hgt + 16}' text-anchor='middle'>"
                        f"{html.escape(label)}</text>")
    body.append(f"<text x='{pad_l + w / 2:.1f}' y='{PAD_T + hgt + 32}' text-anchor='middle'>"
                f"{html.escape(xaxis.label)}</text>")
    body.append(f"<text x='12' y='{PAD_T + hgt / 2:.1f}' text-anchor='middle' "
                f"transform='rotate(-90 12 {PAD_T + hgt / 2:.1f})'>{html.escape(yaxis.label)}</text>")
    for value, label, colour, dash in hlines:
        body.append(f"<line x1='{pad_l}' x2='{pad_l + w}' y1='{Y(value):.1f}' y2='{Y(value):.1f}' stroke='{colour}' "
                    f"stroke-width='1.5' stroke-dasharray='{dash}'><title>{html.escape(label)} "
                    f"{html.escape(y_fmt(value))}</title></line>")
    bar_w = min(40.0, max(2.0, slot * 0.6))
    for s in series:
        pts = sorted(s.points)

        def tip(x: float, y: float, s: _Series = s) -> str:
            extra = f" ({s.tips[x]})" if x in s.tips else ""
            name = s.name or next((o.name for o in series if o.style == s.style and o.name), "")
            return f"<title>{html.escape(name)}, {html.escape(x_tip(x))}: " \
                   f"{html.escape(y_fmt(y))}{html.escape(extra)}</title>"

        if s.style == "steps" and pts:
            coords = []
            for i, (x, y) in enumerate(pts):
                if i:
                    coords.append(f"{X(x):.1f},{Y(pts[i - 1][1]):.1f}")
                coords.append(f"{X(x):.1f},{Y(y):.1f}")
            coords.append(f"{X(x1):.1f},{Y(pts[-1][1]):.1f}")  # the state holds to the right edge
            dash = f" stroke-dasharray='{s.dash}'" if s.dash else ""
            body.append(f"<polyline fill='none' stroke='{s.colour}' stroke-width='2'{dash} "
                        f"points='{' '.join(coords)}'><title>{html.escape(s.name)}</title></polyline>")
            for x, y in pts:
                body.append(f"<circle cx='{X(x):.1f}' cy='{Y(y):.1f}' r='5' fill='{s.colour}' opacity='0'>"
                            f"{tip(x, y)}</circle>")
        if s.style == "line":
            run: list[tuple[float, float]] = []
            for k, (x, y) in enumerate(pts):  # a line only between consecutive periods
                run.append((x, y))
                if k + 1 == len(pts) or pts[k + 1][0] != x + 1:
                    if len(run) > 1:
                        body.append(f"<polyline fill='none' stroke='{s.colour}' stroke-width='2' points='"
                                    + " ".join(f"{X(a) + s.offset:.1f},{Y(clip(b)):.1f}" for a, b in run) + "'/>")
                    run = []
        for x, y in pts:
            cx, cy = X(x) + s.offset, Y(clip(y))
            if s.style == "bars":
                top, base = Y(clip(y)), Y(max(y0, 0))
                fill = f"fill='#fff' stroke='{s.colour}' stroke-width='1.5'" if x in s.hollow else f"fill='{s.colour}'"
                if y == 0:  # settled with no credit: a mark on the axis, unlike a period not settled
                    body.append(f"<rect x='{cx - bar_w / 2:.1f}' y='{base - 2:.1f}' width='{bar_w:.1f}' height='2' "
                                f"fill='{s.colour}'>{tip(x, y)}</rect>")
                else:
                    body.append(f"<rect x='{cx - bar_w / 2:.1f}' y='{top:.1f}' width='{bar_w:.1f}' "
                                f"height='{max(0.0, base - top):.1f}' {fill}>{tip(x, y)}</rect>")
            elif s.style == "cross":
                body.append(f"<path d='M{cx - 4:.1f},{cy - 4:.1f}l8,8m0,-8l-8,8' stroke='{s.colour}' "
                            f"stroke-width='1.5'>{tip(x, y)}</path>")
            elif s.style == "dots":
                body.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='3' fill='{s.colour}' opacity='0.75'>"
                            f"{tip(x, y)}</circle>")
            elif s.style == "line":
                fill = "#fff" if x in s.hollow else s.colour
                body.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='3.5' fill='{fill}' stroke='{s.colour}' "
                            f"stroke-width='1.5'>{tip(x, y)}</circle>")

    legend = [(s.style, s.colour, s.name, s.dash) for s in series if s.name]
    if legend_order is not None:
        legend.sort(key=lambda item: list(legend_order).index(item[2]))
    legend += [("line-hollow", SERIES[0], "settled unfunded (no money moved)", "")
               for s in series[:1] if s.style == "line" and s.hollow]
    legend += [("hline", colour, label, dash) for i, (_v, label, colour, dash) in enumerate(hlines)
               if label not in [h[1] for h in hlines[:i]]]
    legend += list(extra_legend) + _band_legend(bands)
    items, lx, ly = [], 8.0, HEIGHT + 4
    for style, colour, label, dash in legend:
        item_w = 26 + CHAR_W * len(label) + 14
        if lx + item_w > WIDTH and lx > 8:
            lx, ly = 8.0, ly + 18
        items.append(_legend_item(style, colour, label, dash, lx, ly))
        lx += item_w
    height = int(ly + 22)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
            f"viewBox='0 0 {WIDTH} {height}' style='max-width:100%;height:auto' font-family='sans-serif' "
            f"font-size='11' fill='{TEXT}'>" + "".join(body) + "".join(items) + "</svg>")


def _legend_item(style: str, colour: str, label: str, dash: str, x: float, y: float) -> str:
    cy = y + 7
    if style in ("line", "steps", "hline"):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        glyph = f"<line x1='{x}' x2='{x + 20}' y1='{cy}' y2='{cy}' stroke='{colour}' stroke-width='2'{d}/>"
        if style == "line":
            glyph += f"<circle cx='{x + 10}' cy='{cy}' r='3.5' fill='{colour}'/>"
    elif style == "line-hollow":
        glyph = f"<circle cx='{x + 10}' cy='{cy}' r='3.5' fill='#fff' stroke='{colour}' stroke-width='1.5'/>"
    elif style == "dots":
        glyph = f"<circle cx='{x + 10}' cy='{cy}' r='3' fill='{colour}'/>"
    elif style == "cross":
        glyph = f"<path d='M{x + 6},{cy - 4}l8,8m0,-8l-8,8' stroke='{colour}' stroke-width='1.5'/>"
    elif style == "bar-hollow":
        glyph = f"<rect x='{x + 4}' y='{y + 1}' width='12' height='12' fill='#fff' stroke='{colour}' stroke-width='1.5'/>"
    elif style == "band":
        glyph = f"<rect x='{x + 2}' y='{y}' width='16' height='14' fill='{colour}' stroke='#d0d7de'/>"
    else:
        glyph = f"<rect x='{x + 4}' y='{y + 1}' width='12' height='12' fill='{colour}'/>"
    return glyph + f"<text x='{x + 26}' y='{y + 11}'>{html.escape(label)}</text>"


def _pct(ppm: float) -> str:
    return _num(ppm / 10_000, "%")


def _score(ppm: float) -> str:
    return _num(ppm / 1_000_000, "")


def _ms(us: float) -> str:
    return _num(us / 1000, " ms")


def _time(ts: int) -> str:
    return _dt.datetime.fromtimestamp(int(ts), _dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px; color: #1f2328; }}
code {{ font-size: 0.9em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; font-size: 0.9em; }}
table.findings td:nth-child(4) {{ word-break: break-word; }}
.badge {{ color: #fff; padding: 2px 10px; border-radius: 4px; font-size: 0.7em; vertical-align: middle; }}
</style></head><body>
"""
