"""Period maths (smartsla/measure/periods.py) against a brute-force reference, rule by rule, and the compute command."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsla.measure import periods
from smartsla.measure.periods import SampleColumns, compute_periods, maintenance_slices
from smartsla.measure.samples import Sample, Status
from smartsla.terms.parse import load_terms

U, D, X = Status.UP, Status.DOWN, Status.UNKNOWN


def make_terms(*, services=("api", "db"), length="10m", count=2, start=0, slice_="1m", down_after=1, gaps="exclude"):
    svc = ", ".join(f"{{id: {s}, target: '99%'}}" for s in services)
    start_line = f"start: {start}, " if start is not None else ""
    return load_terms(f"""\
agreement: a
provider: provider
customer: customer
payment: {{token: ETH, fee: "1"}}
periods: {{{start_line}length: {length}, count: {count}}}
services: [{svc}]
compensation: {{schedule: [{{below: "99%", credit: "10%"}}]}}
oracles: {{members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}}
measurement: {{slice: {slice_}, down_after: {down_after}, gaps: {gaps}}}
""")


# ------------------------------------------------------------------ reference

_RANK = {U: 0, D: 1}


def reference(terms, samples, windows, start):
    """The rules of docs/oracle.md written as plainly as possible, second by second."""
    L, count, sl = terms.periods.length, terms.periods.count, terms.measurement.slice
    down_after, policy = terms.measurement.down_after, terms.measurement.gaps
    end = start + L * count
    total = L * count // sl
    # maintenance: a slice is out if any whole second of it lies in a window
    maint = [any(a <= x < b for (a, b) in windows for x in range(start + k * sl, start + (k + 1) * sl))
             for k in range(total)]
    states = {}  # service -> list per global slice of "up" / "down" / None
    for sid in terms.service_ids:
        mine = sorted({(s.time, _RANK[s.status], s.status) for s in samples
                       if s.service == sid and s.status != X and start <= s.time < end})
        counted = []
        i = 0
        while i < len(mine):
            j = i
            while j < len(mine) and mine[j][2] == mine[i][2]:
                j += 1
            run = mine[i:j]
            is_outage = run[0][2] == D and len(run) >= down_after
            counted += [(t, "down" if is_outage else "up") for (t, _, _) in run]
            i = j
        per_slice = []
        for k in range(total):
            lo, hi = start + k * sl, start + (k + 1) * sl
            inside = [c for (t, c) in counted if lo <= t < hi]
            per_slice.append("down" if "down" in inside else "up" if inside else None)
        states[sid] = per_slice

    def value(state):
        if state is None:
            return {"exclude": None, "down": "down", "up": "up"}[policy]
        return state

    out = []
    spp = L // sl
    for p in range(count):
        ks = range(p * spp, (p + 1) * spp)
        row = {}
        for sid in terms.service_ids:
            vals = [value(states[sid][k]) for k in ks if not maint[k]]
            up, dn = vals.count("up"), vals.count("down")
            row[sid] = (up, dn, spp - up - dn, _floor_ppm(up, up + dn))
        jvals = []
        for k in ks:
            if maint[k]:
                continue
            vs = [value(states[sid][k]) for sid in terms.service_ids]
            if None in vs:
                continue
            jvals.append("up" if all(v == "up" for v in vs) else "down")
        ju, jd = jvals.count("up"), jvals.count("down")
        row["__joint__"] = (ju, jd, spp - ju - jd, _floor_ppm(ju, ju + jd))
        out.append(row)
    return out


def _floor_ppm(up, eligible):
    return 1_000_000 if eligible == 0 else int(Fraction(1_000_000 * up, eligible))


def as_rows(results):
    rows = []
    for r in results:
        row = {sid: (c.up, c.down, c.excluded, c.ppm) for sid, c in r.services.items()}
        row["__joint__"] = (r.joint.up, r.joint.down, r.joint.excluded, r.joint.ppm)
        rows.append(row)
    return rows


@st.composite
def scenarios(draw):
    slice_ = draw(st.sampled_from([1, 2, 3, 5]))
    spp = draw(st.integers(1, 4))
    count = draw(st.integers(1, 3))
    nsvc = draw(st.integers(1, 3))
    terms = make_terms(
        services=[f"s{i}" for i in range(nsvc)], length=f"{slice_ * spp}s", count=count, start=100,
        slice_=f"{slice_}s", down_after=draw(st.integers(1, 4)), gaps=draw(st.sampled_from(["exclude", "down", "up"])),
    )
    start, end = 100, 100 + slice_ * spp * count
    status = st.sampled_from([U, D, D, X])
    samples = []
    for sid in terms.service_ids:
        # one draw per second, from a bit before the first period to a bit after the last
        for t in range(start - 3, end + 3):
            for offset in draw(st.lists(st.sampled_from([0, 0, 0.5]), max_size=2)):
                samples.append(Sample(t + offset, sid, draw(status)))
    windows = draw(st.lists(
        st.tuples(st.integers(start - 5, end + 5), st.integers(0, 8)).map(lambda w: (w[0], w[0] + w[1])), max_size=3))
    draw(st.randoms()).shuffle(samples)
    return terms, samples, windows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_matches_brute_force_reference(scenario):
    terms, samples, windows = scenario
    got = compute_periods(terms, samples, windows)
    assert as_rows(got) == reference(terms, samples, windows, 100)
    for r in got:
        for c in list(r.services.values()) + [r.joint]:
            assert c.up + c.down + c.excluded == terms.periods.length // terms.measurement.slice
            assert c.excluded >= c.maintenance


# ------------------------------------------------------------- one rule each

def one(terms, samples, windows=(), **kw):
    return compute_periods(terms, samples, windows, **kw)


def test_sample_on_slice_edge_belongs_to_the_later_slice():
    t = make_terms(services=("api",), length="2m", count=1)
    (r,) = one(t, [Sample(0, "api", U), Sample(60, "api", D)])
    assert (r.services["api"].up, r.services["api"].down) == (1, 1)
    (r,) = one(t, [Sample(59.999, "api", D)])
    assert (r.services["api"].up, r.services["api"].down, r.services["api"].excluded) == (0, 1, 1)


def test_sample_on_period_edge_belongs_to_the_next_period_and_outside_samples_are_ignored():
    t = make_terms(services=("api",), length="1m", count=2, start=600)
    r0, r1 = one(t, [Sample(599.9, "api", D), Sample(660, "api", D), Sample(720, "api", D), Sample(600, "api", U)])
    assert (r0.services["api"].up, r0.services["api"].down) == (1, 0)
    assert (r1.services["api"].up, r1.services["api"].down) == (0, 1)
    assert (r0.start, r0.end, r1.start, r1.end) == (600, 660, 660, 720)


def test_outage_straddling_a_period_end_counts_in_both_periods():
    t = make_terms(services=("api",), length="1m", count=2, down_after=2)
    r0, r1 = one(t, [Sample(50, "api", U), Sample(59, "api", D), Sample(60, "api", D), Sample(70, "api", U)])
    assert r0.services["api"].down == 1 and r1.services["api"].down == 1
    # a short run is up, even if it is the only sample of the slice
    r0, r1 = one(t, [Sample(59, "api", D), Sample(60, "api", U)])
    assert (r0.services["api"].up, r1.services["api"].up) == (1, 1)


def test_unknown_neither_breaks_nor_extends_a_run():
    t = make_terms(services=("api",), length="3m", count=1, down_after=2)
    (r,) = one(t, [Sample(10, "api", D), Sample(70, "api", X), Sample(130, "api", D)])
    assert (r.services["api"].down, r.services["api"].excluded) == (2, 1)  # the unknown-only slice is a gap
    (r,) = one(t, [Sample(10, "api", D), Sample(11, "api", X), Sample(12, "api", X)])
    assert r.services["api"].up == 1 and r.services["api"].down == 0


def test_slice_with_any_counted_down_sample_is_down():
    t = make_terms(services=("api",), length="1m", count=1)
    (r,) = one(t, [Sample(1, "api", U), Sample(2, "api", D), Sample(3, "api", U)])
    assert (r.services["api"].up, r.services["api"].down, r.services["api"].ppm) == (0, 1, 0)


@pytest.mark.parametrize("gaps,up,down,excluded,ppm", [
    ("exclude", 1, 1, 1, 500_000), ("down", 1, 2, 0, 333_333), ("up", 2, 1, 0, 666_666)])
def test_gaps_policy_and_floor_rounding(gaps, up, down, excluded, ppm):
    t = make_terms(services=("api",), length="3m", count=1, gaps=gaps)
    (r,) = one(t, [Sample(0, "api", U), Sample(60, "api", D), Sample(120, "api", X)])
    c = r.services["api"]
    assert (c.up, c.down, c.excluded, c.gaps, c.ppm) == (up, down, excluded, 1, ppm)


def test_maintenance_excludes_every_slice_it_overlaps_at_all():
    t = make_terms(services=("api",), length="5m", count=1)
    assert maintenance_slices([(59, 61)], 0, 60, 5) == [(0, 2)]
    assert maintenance_slices([(60, 120)], 0, 60, 5) == [(1, 2)]
    assert maintenance_slices([(60, 60)], 0, 60, 5) == []
    assert maintenance_slices([(-100, 1), (250, 10_000), (0, 30)], 0, 60, 5) == [(0, 1), (4, 5)]
    samples = [Sample(k * 60, "api", D) for k in range(5)]
    (r,) = one(t, samples, [(119.5, 120.5)])
    assert (r.services["api"].down, r.services["api"].maintenance, r.services["api"].excluded) == (3, 2, 2)
    with pytest.raises(ValueError, match="ends before it starts"):
        one(t, samples, [(10, 5)])


def test_zero_eligible_slices_is_full_availability_flagged_unmeasured():
    t = make_terms(services=("api",), length="2m", count=1)
    (r,) = one(t, [])
    assert r.services["api"].ppm == 1_000_000 and not r.services["api"].measured
    assert r.joint.ppm == 1_000_000 and not r.joint.measured
    (r,) = one(t, [Sample(0, "api", D)], [(0, 120)])
    assert r.services["api"].ppm == 1_000_000 and r.services["api"].maintenance == 2


def test_joint_needs_every_service_eligible_and_up():
    t = make_terms(services=("api", "db"), length="4m", count=1)
    samples = [
        Sample(0, "api", U), Sample(0, "db", U),      # joint up
        Sample(60, "api", U), Sample(60, "db", D),    # joint down
        Sample(120, "api", U),                        # db gap: not joint-eligible
        Sample(180, "api", D), Sample(180, "db", D),  # joint down
    ]
    (r,) = one(t, samples)
    assert (r.joint.up, r.joint.down, r.joint.excluded, r.joint.ppm) == (1, 2, 1, 333_333)
    assert r.values == {"api": 750_000, "db": 333_333}


def test_exact_duplicates_count_once_and_ties_take_up_first():
    t = make_terms(services=("api",), length="2m", count=1, down_after=2)
    (r,) = one(t, [Sample(5, "api", D), Sample(5, "api", D)])
    assert r.services["api"].down == 0
    # at the same time up sorts before down, so the later down joins the next downs
    (r,) = one(t, [Sample(5, "api", D), Sample(5, "api", U), Sample(65, "api", D)])
    assert (r.services["api"].up, r.services["api"].down) == (0, 2)


def test_start_argument_unknown_service_and_columns():
    t = make_terms(services=("api",), length="1m", count=1, start=None)
    with pytest.raises(ValueError, match="periods.start"):
        one(t, [])
    (r,) = one(t, [Sample(1000, "api", D)], start=1000)
    assert r.services["api"].down == 1 and r.start == 1000
    with pytest.raises(ValueError, match="'web'"):
        one(t, [Sample(1000, "web", D)], start=1000)
    cols = SampleColumns(np.array([0, 0]), np.array([1000.0, 1010.0]), np.array([periods.UP, periods.DOWN]))
    (r,) = one(t, cols, start=1000)
    assert r.services["api"].down == 1


def test_default_measurement_applies_without_the_key():
    t = load_terms("""\
agreement: a
provider: provider
customer: customer
payment: {token: ETH, fee: "1"}
periods: {start: 0, length: 1h, count: 1}
services: [{id: api, target: "99%"}]
compensation: {schedule: [{below: "99%", credit: "10%"}]}
oracles: {members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}
""")
    (r,) = one(t, [Sample(0, "api", D)])
    assert (r.services["api"].down, r.services["api"].excluded) == (1, 59)


# --------------------------------------------------------------------- the CLI

def run_cli(argv):
    from oracle import cli

    return cli.main(argv)


TERMS_YAML = """\
agreement: acme
provider: provider
customer: customer
payment: {token: ETH, fee: "1"}
periods: {start: "2027-01-01T00:00:00Z", length: 4m, count: 2}
services: [{id: api, target: "99%"}, {id: db, target: "99%"}]
compensation: {schedule: [{below: "99%", credit: "10%"}]}
oracles: {members: [o1], quorum: 1, deadline: 1d, fallback: no-credit}
measurement: {slice: 1m}
"""
T0 = 1798761600


@pytest.fixture
def files(tmp_path):
    terms = tmp_path / "terms.yaml"
    terms.write_text(TERMS_YAML)
    samples = tmp_path / "samples.csv"
    samples.write_text(
        "service,time,status,latency_ms\n"
        f"api,{T0},up,12\n"
        f"api,{T0 + 60},down,\n"
        "api,2027-01-01T00:02:00Z,up\n"
        f"db,{T0},up,3.5\n"
        f"db,{T0 + 60},up\n"
        f"api,{T0 + 240},unknown\n"
    )
    maintenance = tmp_path / "maintenance.csv"
    maintenance.write_text(f"start,end\n{T0 + 180},{T0 + 200}\n")
    return terms, samples, maintenance


def test_cli_json(files, capsys):
    terms, samples, maintenance = files
    assert run_cli(["compute", str(terms), "--samples", str(samples), "--maintenance", str(maintenance), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"periods": [
        {"index": 0, "values": {"api": "66.6666%", "db": "100%"}, "ppm": {"api": 666_666, "db": 1_000_000},
         "onchain": {"api": 666_666, "db": 1_000_000}, "coverage": {"api": 1_000_000, "db": 666_666},
         "joint_ppm": 500_000, "combined": "66.6666%", "credit_bps": 500, "credit": "5%",
         "slices": {"api": {"up": 2, "down": 1, "excluded": 1}, "db": {"up": 2, "down": 0, "excluded": 2}}},
        {"index": 1, "values": {"api": "100%", "db": "100%"}, "ppm": {"api": 1_000_000, "db": 1_000_000},
         "onchain": {"api": 1_000_000, "db": 1_000_000}, "coverage": {"api": 0, "db": 0},
         "joint_ppm": 1_000_000, "combined": "100%", "credit_bps": 0, "credit": "0%",
         "slices": {"api": {"up": 0, "down": 0, "excluded": 4}, "db": {"up": 0, "down": 0, "excluded": 4}}},
    ]}


def test_cli_table(files, capsys):
    terms, samples, _ = files
    assert run_cli(["compute", str(terms), "--samples", str(samples)]) == 0
    out = capsys.readouterr().out
    assert "period 0" in out and "period 1" in out and "joint" in out and "66.6666%" in out and "(no data)" in out


def test_cli_start_when_terms_have_none(files, capsys, tmp_path):
    terms, samples, _ = files
    terms.write_text(TERMS_YAML.replace('start: "2027-01-01T00:00:00Z", ', ""))
    assert run_cli(["compute", str(terms), "--samples", str(samples), "--json"]) == 2
    assert "--start" in capsys.readouterr().err
    assert run_cli(["compute", str(terms), "--samples", str(samples), "--json", "--start", "2027-01-01T00:00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out)["periods"][0]["ppm"]["api"] == 666_666
    assert run_cli(["compute", str(terms), "--samples", str(samples), "--start", "soon"]) == 2
    assert "--start" in capsys.readouterr().err


@pytest.mark.parametrize("row,fragment", [
    ("web,1798761600,up", "unknown service 'web'"),
    ("api,1798761600,fine", "status 'fine'; expected up, down or unknown"),
    ("api,yesterday,up", "'yesterday' is neither unix seconds nor ISO-8601"),
    ("api,2027-01-01T00:00:00,up", "no time zone"),
    ("api,1798761600", "2 fields; expected service,time,status"),
    ("api,1798761600,up,fast", "latency_ms 'fast'"),
    ("api,-5,up", "not a time after 1970"),
    # 10 ns before the edge of the next slice: rounding to the µs would place it in the later slice
    ("api,1798761659.99999999,down", "finer than a microsecond"),
    ("api,2027-01-01T00:00:59.99999999Z,down", "finer than a microsecond"),
])
def test_cli_bad_sample_rows_name_file_and_line(files, capsys, row, fragment):
    terms, samples, _ = files
    samples.write_text(f"api,{T0},up\n{row}\n")
    assert run_cli(["compute", str(terms), "--samples", str(samples)]) == 2
    err = capsys.readouterr().err
    assert f"{samples}:2: " in err and fragment in err, err


@pytest.mark.parametrize("row,fragment", [
    ("5,1", "ends before it starts"),
    ("5", "expected 2 columns"),
    ("x,1", "is neither unix seconds nor ISO-8601"),
])
def test_cli_bad_maintenance_rows(files, capsys, row, fragment):
    terms, samples, maintenance = files
    maintenance.write_text(f"start,end\n{row}\n")
    assert run_cli(["compute", str(terms), "--samples", str(samples), "--maintenance", str(maintenance)]) == 2
    err = capsys.readouterr().err
    assert f"{maintenance}:2: " in err and fragment in err, err


def test_cli_missing_files_and_bad_terms(files, capsys, tmp_path):
    terms, samples, _ = files
    assert run_cli(["compute", str(terms), "--samples", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    terms.write_text(TERMS_YAML.replace("slice: 1m", "slice: 7m"))
    assert run_cli(["compute", str(terms), "--samples", str(samples)]) == 2
    assert "measurement.slice" in capsys.readouterr().err


def test_real_clock_times_just_below_an_edge_stay_in_the_earlier_slice():
    start = 1_798_761_600
    t = make_terms(services=("api",), length="1h", count=1, start=start)
    edges = [start + k * 60 for k in range(1, 60)]
    below = [float(np.nextafter(float(e), 0.0)) for e in edges]
    (r,) = one(t, [Sample(b, "api", D) for b in below])
    assert r.services["api"].down == 59 and r.services["api"].excluded == 1  # slices 0..58, not 1..59
    (r,) = one(t, [Sample(float(e), "api", D) for e in edges])
    assert r.services["api"].down == 59 and r.services["api"].excluded == 1  # slices 1..59
    (r,) = one(t, [Sample(float(start + 3600) - 1e-6, "api", D)])
    assert r.services["api"].down == 1


def test_cli_samples_not_utf8(files, capsys):
    terms, samples, _ = files
    samples.write_bytes(b"api,1798761600,\xff\xfe\n")
    assert run_cli(["compute", str(terms), "--samples", str(samples)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1199), st.integers(0, 2)), max_size=60),
       down_after=st.integers(1, 3))
def test_ordered_columns_are_not_sorted_again_and_give_the_same_result(rows, down_after):
    """Columns already ordered by (service, time, status) skip the sort; the result is the one of any order."""
    t = make_terms(down_after=down_after)
    svc = np.array([r[0] for r in rows], np.int64)
    time_ = np.array([r[1] for r in rows], np.float64)
    status = np.array([r[2] for r in rows], np.int8)
    order = np.lexsort((status, time_, svc))
    assert periods.is_ordered(svc[order], time_[order], status[order])
    shuffled = compute_periods(t, SampleColumns(svc, time_, status))
    ordered = compute_periods(t, SampleColumns(svc[order], time_[order], status[order]))
    assert ordered == shuffled


def test_is_ordered():
    a = np.array([0, 0, 1, 1])
    assert periods.is_ordered(a, np.array([1, 2, 0, 0]), np.array([0, 0, 0, 1]))
    assert not periods.is_ordered(a, np.array([2, 1, 0, 0]))
    assert not periods.is_ordered(a, np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    assert not periods.is_ordered(np.array([1, 0]))
    assert periods.is_ordered(np.array([], np.int64)) and periods.is_ordered(np.array([3]))
