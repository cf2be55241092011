"""``sla-oracle import --events``: the provider's counts into the store, checked against the terms. Hostile and
mistaken files each get one error naming file:line and the fix, and store nothing; the store keeps counts
append-only, one per interval, and refuses an import that contradicts what it holds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from oracle import cli
from oracle.store.events import EventConflict, EventRow
from oracle.store.samples import sample_key
from oracle.store.store import Store
from smartsla.terms.parse import load_terms

AGREEMENT = "0x" + "ab" * 20
TERMS = "examples/aws-s3.yaml"
T0 = load_terms(TERMS).periods.start
KEY = sample_key(AGREEMENT, "s3")


def run(tmp_path, *files, terms=TERMS, extra=()):
    argv = ["import", "--db", str(tmp_path / "o.db"), "--agreement", AGREEMENT, "--events", *files, *extra]
    if terms:
        argv += ["--terms", terms]
    return cli.main(argv)


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_counts_are_stored_once_and_read_back(tmp_path, capsys):
    csv_file = write(tmp_path, "e.csv", f"service,time,good,total,seconds\ns3,{T0},990,1000,300\n"
                                        f"s3,{T0 + 300},1000,1000,300\n")
    jsonl = write(tmp_path, "e.jsonl", json.dumps({"service": "s3", "time": T0 + 600, "good": 5, "total": 5}) + "\n")
    assert run(tmp_path, csv_file, jsonl) == 0
    assert "2 intervals, 2 new" in capsys.readouterr().out
    assert run(tmp_path, csv_file) == 0                       # re-importing adds nothing
    assert "2 intervals, 0 new" in capsys.readouterr().out
    with Store(tmp_path / "o.db") as store:
        cols = store.event_columns([KEY], T0, T0 + 3600)
        assert cols.time_us.tolist() == [T0 * 10**6, (T0 + 300) * 10**6, (T0 + 600) * 10**6]
        assert cols.good.tolist() == [990, 1000, 5] and cols.total.tolist() == [1000, 1000, 5]


BAD = [
    ("service,time,good,total\ns3,{t},-1,5\n", "e.csv:2: good -1 is negative"),
    ("service,time,good,total\ns3,{t},6,5\n", "e.csv:2: good (6) is more than total (5)"),
    ("service,time,good,total\ns3,{t},1.5,5\n", "e.csv:2: good '1.5' is not a whole number of events"),
    ("service,time,good,total\ns3,{t},1,99999999999999\n", "e.csv:2: total 99999999999999 is more than"),
    ("service,time,good,total\nweb,{t},1,5\n", "e.csv:2: unknown service 'web'; the services measured from "
                                               "counts are s3"),
    ("service,time,good,total\ns3,yesterday,1,5\n", "e.csv:2: "),
    ("service,time,good,total,seconds\ns3,{t},1,5,300\ns3,{t_plus_60},1,5,60\n",
     "e.csv:3: the interval of s3 at 2027-01-01T00:01:00Z starts inside the one of line 2"),
    ("service,time,good,total\ns3,{t},1,5\ns3,{t},2,5\n", "e.csv:3: a second, different count for s3"),
    ("service,time,good,total,seconds\ns3,{t_plus_60},1,5,300\n", "crosses a slice edge"),
    ("service,time,good,total,seconds\ns3,{t},1,5,0\n", "seconds 0: an interval has a length"),
    ("service,time,satisfied,tolerating,total\ns3,{t},1,1,5\n", "s3 is a success-rate service: its columns are "
                                                             "good,total"),
    ("service,time,ok,total\ns3,{t},1,5\n", "e.csv:1: header service,time,ok,total: expected"),
    ("", "e.csv: is empty"),
    ("service,time,good,total\ns3,{t},1\n", "e.csv:2: 3 fields; the header has 4"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_files_store_nothing_and_say_why(tmp_path, capsys, text, message):
    f = write(tmp_path, "e.csv", text.format(t=T0, t_plus_60=T0 + 60))
    assert run(tmp_path, f) == 2
    err = capsys.readouterr().err
    assert message.format(t=T0, t_plus_60=T0 + 60) in err, err
    if (tmp_path / "o.db").exists():
        with Store(tmp_path / "o.db") as store:
            assert store.event_count() == 0


def test_events_need_terms_and_samples_services_refuse_counts(tmp_path, capsys):
    f = write(tmp_path, "e.csv", f"service,time,good,total\ns3,{T0},1,5\n")
    assert run(tmp_path, f, terms=None) == 2
    assert "--events needs --terms TERMS.yaml" in capsys.readouterr().err
    f = write(tmp_path, "a.csv", f"service,time,good,total\napi,{T0},1,5\n")
    assert run(tmp_path, f, terms="examples/latency.yaml") == 2
    assert "service 'api' is measured from samples (availability), not event counts" in capsys.readouterr().err


def test_a_count_contradicting_the_store_is_refused_whole(tmp_path, capsys):
    assert run(tmp_path, write(tmp_path, "a.csv", f"service,time,good,total,seconds\ns3,{T0},1,5,300\n")) == 0
    later = write(tmp_path, "b.csv", f"service,time,good,total,seconds\ns3,{T0 + 300},5,5,300\n"
                                     f"s3,{T0},2,5,300\n")
    assert run(tmp_path, later) == 2
    assert "counts are never changed once stored" in capsys.readouterr().err
    inside = write(tmp_path, "c.csv", f"service,time,good,total\ns3,{T0 + 120},5,5\n")
    assert run(tmp_path, inside) == 2
    assert "starts inside the one at" in capsys.readouterr().err
    with Store(tmp_path / "o.db") as store:
        assert store.event_count() == 1           # neither batch stored anything


def test_counts_are_append_only_in_the_file_too(tmp_path):
    with Store(tmp_path / "o.db") as store:
        store.append_events([EventRow(KEY, T0 * 10**6, 300, 1, 0, 5)])
        with pytest.raises(EventConflict):
            store.append_events([EventRow(KEY, T0 * 10**6, 300, 2, 0, 5)])
    raw = sqlite3.connect(tmp_path / "o.db")
    for sql in ("UPDATE events SET good = 5", "DELETE FROM events",
                f"INSERT INTO events (service, time_us, seconds, good, tolerating, total) VALUES ('{KEY}', 1, 0, 6, 0, 5)"):
        with pytest.raises(sqlite3.DatabaseError):
            raw.execute(sql)
    raw.close()


def test_compute_with_events_prints_the_onchain_value_and_credit(tmp_path, capsys):
    f = write(tmp_path, "e.csv", f"service,time,good,total,seconds\ns3,{T0},1000,1000,300\n"
                                 f"s3,{T0 + 300},900,1000,300\ns3,{T0 + 600},0,0,300\n")
    assert cli.main(["compute", TERMS, "--events", f, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["periods"][0]
    assert first["onchain"] == {"s3": 966_666} and first["values"] == {"s3": "96.6666%"}
    assert (first["credit"], first["credit_bps"]) == ("25%", 2500)
    assert cli.main(["compute", TERMS]) == 2
    assert "give --samples FILE.csv" in capsys.readouterr().err


def test_apdex_counts_are_imported_with_their_own_columns(tmp_path, capsys):
    terms = tmp_path / "xla-counts.yaml"
    text = Path("examples/xla.yaml").read_text()
    text = text.replace("    probe: {type: http, url: \"https://shop.example.com/checkout/health\", interval: 30s, "
                        "timeout: 5s}\n", "    source: events\n    slice: 5m\n")
    terms.write_text(text.replace("periods:\n", "periods:\n  start: 1798761600\n"))
    f = write(tmp_path, "a.csv", f"service,time,satisfied,tolerating,total\ncheckout,{T0},90,8,100\n")
    assert run(tmp_path, f, terms=str(terms)) == 0, capsys.readouterr().err
    assert cli.main(["compute", str(terms), "--events", f, "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])["periods"][0]
    assert first["values"] == {"checkout": "0.94"} and first["onchain"] == {"checkout": 940_000}
    bad = write(tmp_path, "b.csv", f"service,time,good,total\ncheckout,{T0 + 300},90,100\n")
    assert run(tmp_path, bad, terms=str(terms)) == 2
    assert "checkout is an apdex service: its columns are satisfied,tolerating,total" in capsys.readouterr().err
