"""The benchmark runs end to end at a tiny size and reports every figure (its speed is not asserted here)."""

from __future__ import annotations

import json

from bench import report
from bench.run import main


def test_tiny_bench_run_reports_every_goal_with_a_figure(tmp_path, capsys):
    out, raw = tmp_path / "performance.md", tmp_path / "figures.json"
    status = main(["--quick", "--size", "2000", "--scans", "50", "--lookups", "500", "--pipeline-scans", "50",
                   "--delta-changes", "20", "--backlog", "150", "--idle-seconds", "0.3", "--settle-seconds", "0.2",
                   "--cache", str(tmp_path / "cache"), "--out", str(out), "--json", str(raw)])

    assert status == 0
    results = json.loads(raw.read_text())["results"]
    printed, document = capsys.readouterr().out, out.read_text()
    for goal in report.GOALS:
        assert goal.value(results) >= 0
        assert goal.label in printed and goal.label in document
    assert results["full_sync"]["entries"] == 2000 and results["full_sync"]["kind"] == "full"
    assert results["delta"]["kind"] == "delta" and results["delta"]["entries"] == 22  # 2 IDs replaced: 2 tombstones
    assert results["drain"]["delivered"] == 150 and results["drain"]["left"] == 0
    assert results["idle"]["exit_status"] == 0
    assert sum(results["scan_standalone"]["outcomes"].values()) == 50
    for heading in ("## Machine", "## Results", "## Goals missed", "## Method", "| SQLite |", "| CPU |"):
        assert heading in document
