"""``smartsla terms from-openslo``: OpenSLO v1 SLOs (the project's own published examples, as test data) become
terms that validate, and what cannot be mapped is refused naming the OpenSLO field."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from smartsla.cli import main
from smartsla.terms.openslo import OpenSLOError, from_openslo
from smartsla.terms.parse import load_terms

DATA = Path(__file__).parent / "data" / "openslo"


def convert(name: str, **kw):
    path = DATA / name
    return from_openslo(path.read_text(), str(path), **kw)


def terms_of(conversion):
    import yaml

    return load_terms(yaml.safe_dump(conversion.document), source_name="converted.yaml")


def test_ratio_timeslices():
    c = convert("ratio-timeslices.yaml")
    t = terms_of(c)
    (s,) = t.services
    assert (s.id, s.objective, s.method, s.slice, s.target) == ("main-page", "success-rate", "ratio-timeslices", 60,
                                                                990_000)
    assert t.periods.length == 14 * 86_400 and t.periods.start is None
    assert any("rolling window" in n for n in c.notes) and any("sla-oracle import --events" in n for n in c.notes)


def test_timeslices_with_a_calendar_start_in_a_time_zone():
    t = terms_of(convert("timeslices.yaml"))
    (s,) = t.services
    assert (s.method, s.slice_target, s.target, s.slice) == ("timeslices", 950_000, 999_500, 60)
    # 2022-01-01 12:00 in New York (EST, UTC-5) is 17:00 UTC
    assert t.periods.start == 1641056400 and t.periods.length == 7 * 86_400


def test_a_threshold_metric_becomes_a_latency_percentile():
    c = convert("occurrences-threshold.yaml")
    (s,) = terms_of(c).services
    assert (s.objective, s.percentile, s.target) == ("latency", Fraction(99), 500_000)
    assert any("read as 500ms" in n for n in c.notes)
    (s,) = terms_of(convert("occurrences-threshold.yaml", threshold_unit="us")).services
    assert s.target == 500


def test_prometheus_good_total_and_bad_total_with_an_indicator_ref():
    t = terms_of(convert("prometheus.yaml"))
    good, errors = t.services
    assert good.events.good.startswith("sum(increase(http_requests_total{code!~") and good.slice == 300
    assert errors.method == "occurrences" and errors.target == 995_000
    assert errors.events.good == ('(sum(increase(http_requests_total[5m]))) - '
                                  '(sum(increase(http_requests_total{code=~"5.."}[5m])))')
    assert t.periods.start == 1798761600


BAD = [
    ("budgetingMethod: RatioTimeslices", "budgetingMethod: Weekly", "spec.budgetingMethod", "'Weekly'"),
    ("apiVersion: openslo/v1\n", "apiVersion: openslo/v1alpha\n", "apiVersion", "reads openslo/v1"),
    ("timeSliceWindow: 1m, ", "", "spec.objectives[0].timeSliceWindow", "needs the slice length"),
    ("timeSliceWindow: 1m", "timeSliceWindow: 11m", "spec.objectives[0].timeSliceWindow", "does not divide"),
    ("target: 0.99}", "target: 1.5}", "spec.objectives[0].target", "at most 1"),
    ("duration: 2w", "duration: fortnight", "spec.timeWindow[0].duration", "not an OpenSLO duration"),
    ("target: 0.99}", "target: 0.9999999}", "spec.objectives[0].target", "finer than 0.0001%"),
]


@pytest.mark.parametrize("old,new,path,fragment", BAD, ids=[b[2] for b in BAD])
def test_what_cannot_be_mapped_names_the_field(old, new, path, fragment):
    text = (DATA / "ratio-timeslices.yaml").read_text()
    assert old in text
    with pytest.raises(OpenSLOError) as info:
        from_openslo(text.replace(old, new), "slo.yaml")
    assert info.value.path == path and fragment in str(info.value), str(info.value)


def test_threshold_metrics_that_do_not_map():
    text = (DATA / "occurrences-threshold.yaml").read_text()
    with pytest.raises(OpenSLOError, match=r"spec.objectives\[0\].op: 'gt' with a thresholdMetric"):
        from_openslo(text.replace("op: lt", "op: gt"))
    with pytest.raises(OpenSLOError, match="spec.budgetingMethod: timeslices with a thresholdMetric"):
        from_openslo(text.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices"))
    with pytest.raises(OpenSLOError, match=r"kind: no SLO document \(kinds found: Service\)"):
        from_openslo("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\n")


def test_command_writes_terms_that_check(tmp_path, capsys):
    out = tmp_path / "terms.yaml"
    assert main(["terms", "from-openslo", str(DATA / "prometheus.yaml"), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "fill in provider, customer, payment, compensation.schedule, oracles" in said.out
    text = out.read_text()
    assert text.startswith("# From the OpenSLO file") and "Placeholders for a development chain" in text
    assert main(["terms", "check", str(out)]) == 0
    assert main(["terms", "from-openslo", str(DATA / "prometheus.yaml"), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["terms", "from-openslo", str(DATA / "timeslices.yaml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["terms"]["services"][0]["method"] == "timeslices" and doc["fill_in"][0] == "provider"
    bad = tmp_path / "bad.yaml"
    bad.write_text((DATA / "timeslices.yaml").read_text().replace("America/New_York", "Mars/Olympus"))
    assert main(["terms", "from-openslo", str(bad)]) == 2
    assert "spec.timeWindow[0].calendar.timeZone: 'Mars/Olympus' is not an IANA time zone" in capsys.readouterr().err
