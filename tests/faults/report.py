"""Run the fault suite at a scale and write docs/reliability.md from what it measured:

    python -m tests.faults.report                 # the CI scale (1), a few minutes
    python -m tests.faults.report --scale 10      # ten times the trials, scans, inputs and soak time

The suite runs as its own pytest process (`pytest tests/faults --run-faults --fault-scale S`); each test records its
figures, and this module turns them, the machine and the command into the document. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.machine import describe, load

from .conftest import RESULTS_ENV
from .report_text import SECTIONS, intro, method_notes

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 is the CI scale")
    parser.add_argument("--output", default=str(ROOT / "docs" / "reliability.md"))
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "pytest", "tests/faults", "--run-faults", f"--fault-scale={args.scale:g}",
               "-q", "-p", "no:cacheprovider"]
    machine = describe(str(ROOT))
    with tempfile.TemporaryDirectory() as scratch:
        results_path = os.path.join(scratch, "results.json")
        started = time.monotonic()
        status = subprocess.run(command, cwd=ROOT, env={**os.environ, RESULTS_ENV: results_path}).returncode
        seconds = time.monotonic() - started
        with open(results_path) as file:
            results = json.load(file)
    machine["Load average at the end"] = load()
    document = render(results, machine, seconds, args.scale, status)
    Path(args.output).write_text(document)
    print(f"wrote {args.output} ({seconds:.0f} s, pytest exit status {status})")
    return status


def render(results: dict, machine: dict[str, str], seconds: float, scale: float, status: int) -> str:
    tests = results["tests"]
    counts = {outcome: sum(t["outcome"] == outcome for t in tests.values()) for outcome in ("passed", "failed",
                                                                                             "skipped")}
    shown = f"python -m tests.faults.report --scale {scale:g}"
    lines = [*intro(), "", "## This run", "", "| | |", "|---|---|",
             f"| Command | `{shown}` (runs `pytest tests/faults --run-faults --fault-scale={scale:g}`) |",
             f"| Scale | {scale:g} ({'the CI scale' if scale == 1 else f'{scale:g} × the CI scale'}) |",
             f"| Finished | {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} |",
             f"| Wall time | {seconds:.0f} s |",
             f"| Tests | {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
             f"(pytest exit status {status}) |",
             "", "## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine.items()]]
    for title, module, claim in SECTIONS:
        mine = {nodeid: t for nodeid, t in tests.items() if nodeid.startswith(f"tests/faults/{module}::")}
        lines += ["", f"## {title}", "", claim, ""]
        lines += section(mine) if mine else ["(not run)"]
    failures = {nodeid: t for nodeid, t in tests.items() if t["outcome"] == "failed"}
    if failures:
        lines += ["", "## Failures", ""]
        for nodeid, test in failures.items():
            lines += [f"### `{nodeid}`", "", "```", test.get("failure", "")[-1500:], "```", ""]
    lines += ["", *method_notes()]
    return "\n".join(lines).rstrip() + "\n"


def section(tests: dict[str, dict]) -> list[str]:
    """One table: a row per test (its parameter, or its name), a column per figure; lists of rows apart."""
    columns: list[str] = []
    for test in tests.values():
        columns += [name for name, value in test.get("figures", {}).items()
                    if name not in columns and not isinstance(value, (list, dict))]
    lines = ["| test | result | time (s) | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    extras: list[str] = []
    for nodeid, test in tests.items():
        figures = test.get("figures", {})
        cells = [_cell(figures.get(name, "")) for name in columns]
        lines.append(f"| {_label(nodeid)} | {test['outcome']} | {test['duration_s']:.1f} | " + " | ".join(cells)
                     + " |")
        for name, value in figures.items():
            if isinstance(value, dict):
                extras.append(f"- {_label(nodeid)}, {name}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
            elif isinstance(value, list):
                extras += ["", f"{name} ({_label(nodeid)}):", "", "| " + " | ".join(name.strip(")").split("(")[1]
                                                                                   .split(", ")) + " |",
                           "|" + "---|" * len(value[0]), *["| " + " | ".join(map(str, row)) + " |" for row in value]]
    return lines + ([""] + extras if extras else [])


def _label(nodeid: str) -> str:
    name = nodeid.split("::")[-1]
    return name.split("[", 1)[1].rstrip("]") if "[" in name else f"`{name}`"


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value).replace("|", "\\|")


if __name__ == "__main__":
    sys.exit(main())
