"""The benchmark harness runs end to end on a small input and reports every section (no timed assertions)."""

import json
import re
import tempfile

import pytest

from benchmarks import run  # noqa: E402


@pytest.mark.slow
def test_harness_reports_every_section(tmp_path):
    out, raw = tmp_path / "RESULTS.md", tmp_path / "raw.json"
    assert run.main(["--events", "20000", "--repeat", "1", "--skip-latency", "--out", str(out), "--json", str(raw),
                     "--workdir", str(tmp_path)]) == 0
    text = out.read_text()
    for heading in ("## Machine", "## 1. Load + build vs the bare read", "## 2. Dashboard latency",
                    "## 3. The peer", "## 4. Scaling", "## Budget (docs/performance.md)"):
        assert heading in text
    assert "20,000 events" in text
    assert re.search(r"\| csv \|", text) and re.search(r"\| parquet \|", text)
    assert "skipped (--skip-latency)" in text
    for line in ("load + build, CSV in", "peak memory of load + build", "metric set vs pandas"):
        assert line in text

    res = json.loads(raw.read_text())
    assert res["machine"]["cores"] >= 1
    for fmt in ("csv", "parquet"):
        v = res["load"]["inputs"][fmt]
        assert v["load"]["seconds"] > 0 and v["bare"]["seconds"] > 0 and v["ratio"] > 0
        assert v["load"]["peak_mb"] > 0 and v["bare"]["peak_mb"] > 0
    peer = res["peer"]
    assert peer["pandas"]["status"] == "ok"
    assert peer["funnelboard"]["seconds"] > 0 and peer["pandas"]["seconds"] > 0 and peer["ratio"] > 0
    assert all(t > 0 for t in peer["funnelboard"]["per_metric"].values())
    assert peer["pandas"]["rows"]["stalled"] > 0 and peer["funnelboard"]["rows"]["stalled"] > 0


@pytest.mark.slow
def test_concurrency_benchmark_reports_both_servers_without_errors(tmp_path, monkeypatch, capsys):
    from benchmarks import concurrency

    temp = tmp_path / "temp"  # where the latency Server writes its log while a server runs
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    raw = tmp_path / "raw.json"
    assert concurrency.main(["--events", "4000", "--clients", "2", "--requests", "20", "--workdir", str(tmp_path),
                             "--json", str(raw)]) == 0
    text = capsys.readouterr().out
    assert "| server | clients | requests | errors |" in text and "| server | p95, 1 client |" in text

    res = json.loads(raw.read_text())
    assert res["events"] == 4000 and res["mix"]["distinct_requests"] > 20 and len(res["mix"]["pages"]) >= 9
    assert list(res["runs"]) == ["development", "production"]
    for kind, runs in res["runs"].items():
        for run_ in (runs["single"], runs["concurrent"]):
            assert run_["errors"] == 0 and run_["answered"] == run_["requests"] == 20, (kind, run_["error_examples"])
            assert 0 < run_["p50_ms"] <= run_["p95_ms"] <= run_["max_ms"]
            assert run_["peak_mb"] > 10 and run_["load"]["ok"]
        assert runs["concurrent"]["clients"] == 2 and runs["ratio_p95"] > 0
    assert list(temp.glob("funnelboard-latency-*.log")) == []  # each server's log removed after its run
    assert list(tmp_path.glob("fbconc-*")) == []  # the workdir's data removed
