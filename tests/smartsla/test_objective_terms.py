"""Terms of the objectives beyond availability: latency percentiles, success rates, Apdex, two objectives on one
probe, and the combined number shown with basis per-service. Each mistake gets one error naming its key."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.smartsla.test_terms import base_doc, load_doc, rejected


def _service(**keys) -> dict:
    """A third service for base_doc(), with its own schedule fitting its objective."""
    objective = keys.get("objective", "availability")
    tiers = {"latency": [{"above": "300ms", "credit": "10%"}], "apdex": [{"below": "0.85", "credit": "10%"}]}
    service = {"id": "extra", "target": {"latency": "300ms", "apdex": "0.94"}.get(objective, "99.9%"),
               "schedule": tiers.get(objective, [{"below": "99.9%", "credit": "10%"}])}
    service.update(keys)
    return service


def with_service(**keys) -> dict:
    doc = base_doc()
    doc["services"].append(_service(**keys))
    return doc


def test_latency_percentile_is_exact():
    t = load_doc(with_service(objective="latency", percentile=99.9))
    assert t.services[2].percentile == Fraction(999, 10)
    assert load_doc(with_service(objective="latency", percentile="95")).services[2].percentile == 95
    assert load_doc(with_service(objective="latency", percentile=100)).services[2].percentile == 100


def test_apdex_score_and_threshold():
    doc = with_service(objective="apdex", threshold="500ms", target="0.94",
                       schedule=[{"below": "0.94", "credit": "5%"}, {"below": "0.85", "credit": "20%"}])
    s = load_doc(doc).services[2]
    assert (s.target, s.threshold_us, s.source) == (940_000, 500_000, "samples")
    assert [t.threshold for t in s.tiers] == [940_000, 850_000]
    assert s.format_value(937_500) == "0.9375"


def test_success_rate_methods():
    s = load_doc(with_service(objective="success-rate")).services[2]
    assert (s.method, s.source, s.slice, s.empty_slice) == ("occurrences", "events", None, "good")
    s = load_doc(with_service(objective="success-rate", method="ratio-timeslices", slice="5m",
                              empty_slice="excluded")).services[2]
    assert (s.method, s.slice, s.empty_slice) == ("ratio-timeslices", 300, "excluded")
    s = load_doc(with_service(objective="success-rate", method="timeslices", slice_target="99%")).services[2]
    assert s.slice_target == 990_000


def test_two_objectives_on_one_probe():
    doc = base_doc()
    doc["services"][0]["probe"] = {"type": "http", "url": "http://127.0.0.1:9/health", "interval": "30s"}
    doc["services"].append(_service(objective="latency", percentile=95, samples_from="api"))
    t = load_doc(doc)
    assert t.services[2].sample_service == "api" and t.services[2].probe is None
    assert t.services[0].sample_service == "api"


def test_per_service_basis_accepts_the_combined_number_it_shows():
    doc = base_doc()
    doc["compensation"]["combined"] = "weighted"
    t = load_doc(doc)
    assert (t.compensation.basis, t.compensation.combined) == ("per-service", "weighted")


def test_a_combined_number_across_objectives_is_refused():
    doc = with_service(objective="latency", percentile=99)
    doc["compensation"]["combined"] = "min"
    err = rejected(doc, lambda d: None, "compensation.combined", "combines services of different objectives")
    assert "services[2] is latency" in err.message


LATENCY = {"objective": "latency", "percentile": 99}
APDEX = {"objective": "apdex", "threshold": "500ms"}
RATE = {"objective": "success-rate"}

BAD = [
    (dict(objective="latency"), "services[2].percentile", "missing: a latency objective says which percentile"),
    (dict(LATENCY, percentile=0), "services[2].percentile", "outside the percentiles"),
    (dict(LATENCY, percentile=101), "services[2].percentile", "outside the percentiles"),
    (dict(LATENCY, percentile="99%"), "services[2].percentile", "no % sign"),
    (dict(LATENCY, percentile=99.99999), "services[2].percentile", "at most 4 decimals"),
    (dict(LATENCY, percentile=True), "services[2].percentile", "got the boolean true"),
    (dict(percentile=99), "services[2].percentile", "is not used with objective: availability (only with latency"),
    (dict(objective="apdex"), "services[2].threshold", "missing: an apdex objective needs its threshold"),
    (dict(APDEX, threshold="0s"), "services[2].threshold", "must be longer than 0s"),
    (dict(APDEX, threshold="20m"), "services[2].threshold", "4T must fit"),
    (dict(APDEX, target="94%"), "services[2].target", "an Apdex score is a decimal from 0 to 1"),
    (dict(APDEX, target="1.2"), "services[2].target", "more than 1"),
    (dict(APDEX, schedule=[{"below": "85%", "credit": "5%"}]), "services[2].schedule[0].below", "Apdex score"),
    (dict(APDEX, schedule=[{"above": "0.8", "credit": "5%"}]), "services[2].schedule[0].above",
     '"above:" does not fit apdex'),
    (dict(APDEX, schedule=[{"below": "0.8", "credit": "5%"}, {"below": "0.9", "credit": "9%"}]),
     "services[2].schedule[1].below", '"0.9" must be below "0.8"'),
    (dict(threshold="500ms"), "services[2].threshold", "only with apdex"),
    (dict(RATE, method="ratio"), "services[2].method", "occurrences | ratio-timeslices | timeslices"),
    (dict(RATE, method="timeslices"), "services[2].slice_target", "missing: method timeslices counts the slices"),
    (dict(RATE, slice_target="99%"), "services[2].slice_target", "only used with method: timeslices"),
    (dict(RATE, empty_slice="good"), "services[2].empty_slice", "occurrences has no slices to be empty"),
    (dict(RATE, method="ratio-timeslices", empty_slice="bad"), "services[2].empty_slice", "good | excluded"),
    (dict(RATE, slice="7m"), "services[2].slice", "does not divide the period length"),
    (dict(RATE, source="samples"), "services[2].source", "source must be events"),
    (dict(RATE, probe={"type": "tcp", "host": "127.0.0.1", "port": 9}), "services[2].probe",
     "is not used with objective: success-rate"),
    (dict(RATE, events={"prometheus": {"good": "g"}}), "services[2].events.prometheus.total",
     "missing required key"),
    (dict(RATE, events={"prometheus": {"good": "g", "total": "t", "tolerating": "x"}}),
     "services[2].events.prometheus.tolerating", "only used with objective: apdex"),
    (dict(RATE, events={"prometheus": {"good": "g", "total": "t", "url": "ftp://x"}}),
     "services[2].events.prometheus.url", "not an http:// or https:// URL"),
    (dict(APDEX, source="events", events={"prometheus": {"good": "g", "total": "t"}}),
     "services[2].events.prometheus.tolerating", "missing: apdex from Prometheus needs three expressions"),
    (dict(APDEX, slice="5m"), "services[2].slice", "only used with source: events"),
    (dict(APDEX, source="events", samples_from="api"), "services[2].samples_from", "not used with source: events"),
    (dict(method="occurrences"), "services[2].method", "only with success-rate"),
    (dict(samples_from="nope"), "services[2].samples_from", '"nope" is not a service of these terms'),
    (dict(samples_from="extra"), "services[2].samples_from", "names this service itself"),
    (dict(samples_from="api", probe={"type": "tcp", "host": "127.0.0.1", "port": 9}), "services[2].samples_from",
     "that would probe the target twice"),
    (dict(samples_from="API"), "services[2].samples_from", "the id of another service"),
]


@pytest.mark.parametrize("keys,path,fragment", BAD, ids=[f"{i}:{c[1]}" for i, c in enumerate(BAD)])
def test_bad_objective_keys_name_the_key(keys, path, fragment):
    rejected(with_service(**keys), lambda d: None, path, fragment)


def test_samples_from_a_service_that_itself_borrows_is_refused():
    doc = with_service(samples_from="api")
    doc["services"].append(dict(_service(samples_from="extra"), id="more"))
    rejected(doc, lambda d: None, "services[3].samples_from", 'name "api", the service with the probe')


def test_samples_from_an_event_service_is_refused():
    doc = with_service(objective="success-rate")
    doc["services"].append(dict(_service(samples_from="extra"), id="more"))
    rejected(doc, lambda d: None, "services[3].samples_from", "measured from event counts")
