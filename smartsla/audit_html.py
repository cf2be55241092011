"""The audit as one self-contained HTML file for people: the verdicts, each service's value against its target per
period, the credit per period, and the money flows. Plots are inline SVG drawn here (no plotting dependency)."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable, Sequence
from typing import Any

from .audit import AuditReport

WIDTH, HEIGHT = 760, 280
PAD_L, PAD_R, PAD_T, PAD_B = 70, 20, 24, 40
COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "SKIP": "#9a6700"}
SERIES = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#57606a"]


def render(report: AuditReport) -> str:
    h = report.history
    parts = [_HEAD.format(title=html.escape(f"Audit of {report.agreement}"))]
    verdict = "PASS" if report.ok else "FAIL"
    counts = report.counts()
    parts.append(f"<h1>Audit of <code>{report.agreement}</code> "
                 f"<span class='badge' style='background:{COLOURS[verdict]}'>{verdict}</span></h1>")
    if h is not None:
        terms = h.terms
        rows = [("chain id", h.chain_id), ("factory", h.factory),
                ("created", f"block {h.created_block}, {_time(h.created_at)}, by {h.created_by}"),
                ("provider", terms["provider"]), ("customer", terms["customer"]),
                ("token", "ETH" if h.agreement.is_eth else terms["token"]), ("fee per period", terms["fee"]),
                ("periods", f"{terms['periodCount']} of {terms['periodLength']} s from {_time(terms['start'])}"),
                ("oracles", f"{terms['quorum']} of {len(terms['oracles'])}: " + ", ".join(terms["oracles"])),
                ("document hash", "0x" + h.document_hash.hex()), ("read up to block", h.to_block)]
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
        parts.append("<h2>Credit per period</h2>")
        parts.append(_credit_plot(h))
        parts.append("<h2>Money</h2>")
        parts.append(_money_plot(h))
        t = h.totals()
        parts.append("<table class='facts'>" + "".join(
            f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{v:,}</td></tr>" for k, v in t.items()) + "</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


# ---------------------------------------------------------------- plots


def _service_plots(report: AuditReport) -> list[str]:
    h = report.history
    out = []
    services = h.agreement.terms_tuple[8]
    count = h.terms["periodCount"]
    for i, service in enumerate(services):
        sid = bytes(service[0]).rstrip(b"\0").decode(errors="backslashreplace")
        target, lower = int(service[1]), bool(service[3])
        fmt = _ms if lower else _pct
        used, fallback = [], []
        oracle_points: dict[str, list[tuple[float, float]]] = {}
        for p, s in sorted(h.settlements.items()):
            if s.values:
                used.append((p, s.values[i]))
            else:
                fallback.append(p)
            for r in s.reports:
                oracle_points.setdefault(r.oracle, []).append((p, r.values[i]))
        recomputed = [(p, v[sid]) for (p, _o), v in sorted(report.evidence_values.items()) if sid in v]
        series = [("used (median)", SERIES[0], used, "line")]
        for j, (oracle, pts) in enumerate(sorted(oracle_points.items())):
            series.append((f"oracle {oracle[:8]}…", SERIES[(j + 2) % len(SERIES)], pts, "dots"))
        if recomputed:
            series.append(("recomputed from evidence", SERIES[1], recomputed, "cross"))
        values = [y for _n, _c, pts, _s in series for _x, y in pts] + [target]
        lo, hi = min(values), max(values)
        if not lower:
            lo = min(lo, target - max(1, (hi - lo) // 10))
        tiers = [int(t[0]) for t in service[4]]
        out.append(f"<h3>{html.escape(sid)} ({'latency' if lower else 'availability'}, target {fmt(target)})</h3>")
        out.append(_chart(series, (0, max(count - 1, 1)), (lo, hi), fmt, x_label="period",
                          hlines=[(target, "target", "#cf222e")] + [(t, "tier", "#d0d7de") for t in tiers
                                                                   if lo <= t <= hi],
                          marks=[(p, "fallback") for p in fallback]))
    return out


def _credit_plot(h: Any) -> str:
    pts = [(p, s.credit_bps / 100) for p, s in sorted(h.settlements.items())]
    top = max([y for _x, y in pts] + [100])
    return _chart([("credit % of the fee", SERIES[4], pts, "bars")], (0, max(h.terms["periodCount"] - 1, 1)),
                  (0, top), lambda v: f"{v:g}%", x_label="period")


def _money_plot(h: Any) -> str:
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
            series[name].append((e.timestamp, value))
    if not series["escrowed"]:
        return "<p>No money has moved.</p>"
    xs = [x for pts in series.values() for x, _y in pts]
    top = max(y for pts in series.values() for _x, y in pts) or 1
    return _chart([(n, SERIES[i], pts, "steps") for i, (n, pts) in enumerate(series.items())],
                  (min(xs), max(max(xs), min(xs) + 1)), (0, top), lambda v: f"{v:,.0f}", x_label="time",
                  x_fmt=lambda x: _time(int(x))[:10])


def _chart(series: Sequence[tuple[str, str, list[tuple[float, float]], str]], xr: tuple[float, float],
           yr: tuple[float, float], y_fmt: Callable[[float], str], *, x_label: str,
           hlines: Sequence[tuple[float, str, str]] = (), marks: Sequence[tuple[float, str]] = (),
           x_fmt: Callable[[float], str] | None = None) -> str:
    x0, x1 = xr
    y0, y1 = yr
    if y1 <= y0:
        y1 = y0 + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    w, hgt = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def X(x: float) -> float:
        return PAD_L + (x - x0) / ((x1 - x0) or 1) * w

    def Y(y: float) -> float:
        return PAD_T + (1 - (y - y0) / (y1 - y0)) * hgt

    height = HEIGHT + 22 * ((len(series) + 3) // 4)
    svg = [(f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' font-family='sans-serif' "
           "font-size='11'>"),
           f"<rect x='{PAD_L}' y='{PAD_T}' width='{w}' height='{hgt}' fill='#fff' stroke='#d0d7de'/>"]
    for k in range(5):
        y = y0 + (y1 - y0) * k / 4
        svg.append(f"<line x1='{PAD_L}' x2='{PAD_L + w}' y1='{Y(y):.1f}' y2='{Y(y):.1f}' stroke='#eee'/>"
                   f"<text x='{PAD_L - 4}' y='{Y(y) + 4:.1f}' text-anchor='end'>{html.escape(y_fmt(y))}</text>")
    ticks = 6
    for k in range(ticks + 1):
        x = x0 + (x1 - x0) * k / ticks
        label = x_fmt(x) if x_fmt else f"{round(x)}"
        svg.append(f"<text x='{X(x):.1f}' y='{PAD_T + hgt + 14}' text-anchor='middle'>{html.escape(label)}</text>")
    svg.append(f"<text x='{PAD_L + w / 2}' y='{PAD_T + hgt + 30}' text-anchor='middle'>{html.escape(x_label)}</text>")
    for value, label, colour in hlines:
        svg.append(f"<line x1='{PAD_L}' x2='{PAD_L + w}' y1='{Y(value):.1f}' y2='{Y(value):.1f}' stroke='{colour}' "
                   f"stroke-dasharray='5,3'><title>{html.escape(label)} {html.escape(y_fmt(value))}</title></line>")
    for x, label in marks:
        svg.append(f"<line x1='{X(x):.1f}' x2='{X(x):.1f}' y1='{PAD_T}' y2='{PAD_T + hgt}' stroke='#9a6700' "
                   f"stroke-dasharray='2,2'><title>period {x}: {html.escape(label)}</title></line>")
    bar_w = max(2.0, w / max(1, (x1 - x0 + 1)) * 0.6)
    for name, colour, pts, style in series:
        pts = sorted(pts)
        if style in ("line", "steps") and pts:
            coords = []
            for i, (x, y) in enumerate(pts):
                if style == "steps" and i:
                    coords.append(f"{X(x):.1f},{Y(pts[i - 1][1]):.1f}")
                coords.append(f"{X(x):.1f},{Y(y):.1f}")
            svg.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(coords)}'/>")
        for x, y in pts:
            tip = f"<title>{html.escape(name)}: {x_fmt(x) if x_fmt else x}: {html.escape(y_fmt(y))}</title>"
            if style == "bars":
                svg.append(f"<rect x='{X(x) - bar_w / 2:.1f}' y='{Y(y):.1f}' width='{bar_w:.1f}' "
                           f"height='{max(0.0, Y(y0 + pad) - Y(y)):.1f}' fill='{colour}'>{tip}</rect>")
            elif style == "cross":
                svg.append(f"<path d='M{X(x) - 4:.1f},{Y(y) - 4:.1f}l8,8m0,-8l-8,8' stroke='{colour}' "
                           f"stroke-width='1.5'>{tip}</path>")
            elif style == "dots":
                svg.append(f"<circle cx='{X(x):.1f}' cy='{Y(y):.1f}' r='3' fill='{colour}' opacity='0.6'>{tip}"
                           f"</circle>")
            elif style == "line":
                svg.append(f"<circle cx='{X(x):.1f}' cy='{Y(y):.1f}' r='2.5' fill='{colour}'>{tip}</circle>")
    for i, (name, colour, _pts, _style) in enumerate(series):
        lx, ly = PAD_L + (i % 4) * 180, HEIGHT + 6 + 22 * (i // 4)
        svg.append(f"<rect x='{lx}' y='{ly}' width='12' height='12' fill='{colour}'/>"
                   f"<text x='{lx + 16}' y='{ly + 10}'>{html.escape(name)}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _pct(ppm: float) -> str:
    return f"{ppm / 10_000:.3f}%"


def _ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


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
