"""Run every benchmark and report against the goals: `.venv/bin/python -m bench` (or `bench/run.py`).

`--quick` is a smoke run at 100k IDs that prints the table and writes no file unless `--out` is given; the full
run (1M IDs) writes docs/performance.md. Generated server databases are cached in bench/.cache/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import idle, machine, report, seed  # noqa: E402
from bench.server_process import ServerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "bench" / ".cache"
DEFAULT_DOC = ROOT / "docs" / "performance.md"
LARGE_PAGE = 5000  # the contract's largest roster page (the default sync.page_size is 1000)


@dataclass(frozen=True)
class Plan:
    label: str
    size: int  # IDs in the server's roster
    scans: int  # scans timed through the scan path (each run: standalone, then with delivery running)
    lookups: int  # roster lookups timed alone
    pipeline_scans: int  # HID scans through the pure core for its CPU time
    delta_changes: int  # roster changes made on the server before the delta sync
    backlog: int  # queued check-ins drained to the server
    idle_s: float  # idle window of `tagd run`
    settle_s: float = 3.0  # after READY, before the idle window: start-up sync and first delivery wake-up


FULL = Plan("full run", 1_000_000, 2000, 100_000, 10_000, 1000, 10_000, 20.0)
QUICK = Plan("quick run", 100_000, 500, 20_000, 2000, 1000, 2000, 5.0, 1.5)

METHOD = """
- **Server.** The reference server (`server/`, waitress + Flask, SQLite) runs in its own process on loopback
  (`bench/server_process.py`), so no figure of the reader includes the server's CPU or memory. It has no bulk
  import, so the bench writes the clients straight into its `clients` table (`bench/seed.py`: business, location
  and the enrolled device through `server.service`, then one `executemany` per 50k clients, numbered as
  `add_client` numbers them). The result is cached in `bench/.cache/` and copied for each run.
- **Full and delta sync** run `bootstrap.sync_roster_now` (what `tagd sync` runs without a daemon) in a fresh
  process, which reports its own `ru_maxrss` and `VmHWM`, with the default `sync.page_size` (1000); the full
  sync runs once more with 5000, the largest page the contract allows (a configuration may choose it). The
  delta follows changes made through the server's storage layer: 70 % status flips, 20 % new clients, 10 % IDs
  replaced (a tombstone and a new ID each).
- **Scan → durable commit**: a real `Reader` (as `make_reader` builds it, with the synced roster) gets frames
  from an injected scanner; the time runs from the frame handed to the reader's sink to `feedback.show()`,
  which the desk calls only after `Outbox.record()` has committed (synchronous=FULL, WAL fsynced). Scans are
  distinct IDs, back to back: 90 % known (some read in lower case), 10 % unknown. "Delivery running": the same
  with the server configured, so every recorded check-in wakes the delivery worker, whose outbox transactions
  share the writer lock with `record()`.
- **Pipeline CPU**: `time.process_time()` over thousands of HID scans fed as real `evdev.InputEvent` objects
  (from `keys.key_events_for`, us layout, 2 ms between keys) through KeyDecoder → HidFramer → ScanPipeline →
  decide, i.e. the pure core without SQLite.
- **Roster lookup**: `RosterCache.lookup()` alone, each call timed with `perf_counter_ns`.
- **Drain**: check-ins recorded while offline, then one `DeliveryWorker` (default batch size) sends them to
  the server; timed from the wake-up until the last batch's results are committed in the outbox.
- **READY and idle**: `python -m daemon.cli run` with a stdin scanner (an open pipe) and the server configured.
  READY-equivalent is the moment status.json holds the new pid (written by `Reader.start()`, after the stores
  are open and the tasks started), timed from just before exec, so it includes interpreter start and imports.
  It is a first start: the roster is there (copied from the sync), the outbox is created.
  After a settling pause, wake-ups are the voluntary context switches summed over all threads
  (`/proc/PID/task/*/status`), CPU the summed schedstat run time, RSS `VmRSS` at the end of the window.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 100k IDs, smaller counts, no file")
    for name, help_text in (("size", "IDs in the roster"), ("scans", "scans timed per scan-path run"),
                            ("lookups", "roster lookups timed"), ("pipeline-scans", "HID scans for pipeline CPU"),
                            ("delta-changes", "roster changes for the delta sync"),
                            ("backlog", "queued check-ins to drain")):
        parser.add_argument(f"--{name}", type=int, help=help_text)
    parser.add_argument("--idle-seconds", type=float, help="idle window of `tagd run`")
    parser.add_argument("--settle-seconds", type=float, help="pause between READY and the idle window")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache and scratch directory")
    parser.add_argument("--out", help=f"markdown report (default: {DEFAULT_DOC.relative_to(ROOT)} for a full run)")
    parser.add_argument("--json", help="also write every raw figure to this JSON file")
    return parser.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    overrides = {"size": args.size, "scans": args.scans, "lookups": args.lookups,
                 "pipeline_scans": args.pipeline_scans, "delta_changes": args.delta_changes,
                 "backlog": args.backlog, "idle_s": args.idle_seconds, "settle_s": args.settle_seconds}
    plan = replace(plan, **{key: value for key, value in overrides.items() if value is not None})
    if any(value is not None for value in overrides.values()):
        plan = replace(plan, label=f"{plan.label}, sizes overridden")
    return plan


def child_served(server: ServerProcess, workload: str, **params) -> dict:
    """A workload that talks to the server, with the server's CPU time over it (`server_cpu_s`)."""
    before = server.cpu_seconds()
    figures = child(workload, url=server.url, **params)
    return {**figures, "server_cpu_s": server.cpu_seconds() - before}


def child(workload: str, **params) -> dict:
    """Run one workload of bench.child in a fresh process; its figures come back as JSON."""
    done = subprocess.run([sys.executable, "-m", "bench.child", workload, json.dumps(params)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench workload {workload} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(plan: Plan, work: Path, cache: str) -> dict:
    step = _progress()
    step(f"server database with {plan.size:,} clients")
    server_db = seed.seeded_copy(cache, plan.size, str(work))
    token_file = work / "token"
    token_file.write_text(server_db.token + "\n")
    auth = {"token_file": str(token_file), "token": server_db.token}
    results: dict = {"delta_changes": plan.delta_changes}
    with ServerProcess(server_db.db_path) as server:
        synced = work / "synced"
        step("full roster sync")
        results["full_sync"] = child_served(server, "roster-sync", state_dir=str(synced), **auth)
        step(f"full roster sync, {LARGE_PAGE} IDs per page")
        results["full_sync_large_pages"] = child_served(server, "roster-sync", state_dir=str(work / "large-pages"),
                                                        page_size=LARGE_PAGE, **auth)
        step("delta roster sync")
        seed.apply_changes(server_db.db_path, server_db.business_id, plan.size, plan.delta_changes)
        results["delta"] = child_served(server, "roster-sync", state_dir=str(synced), **auth)
        common = {"size": plan.size, "scans": plan.scans}
        step("scan path, standalone")
        results["scan_standalone"] = child("scan-path", state_dir=_state(work, "standalone", synced),
                                           lookups=plan.lookups, **common)
        step("scan path, delivery running")
        results["scan_online"] = child("scan-path", state_dir=_state(work, "online", synced), url=server.url,
                                       **auth, **common)
        step("pipeline CPU")
        results["pipeline"] = child("pipeline-cpu", size=plan.size, scans=plan.pipeline_scans)
        step(f"draining {plan.backlog:,} check-ins")
        results["drain"] = child_served(server, "drain", state_dir=_state(work, "drain"), size=plan.size,
                                 backlog=plan.backlog, **auth)
        step("start-up in process")
        results["startup"] = child("startup", state_dir=_state(work, "startup", synced), url=server.url, **auth)
        step(f"tagd run: READY, then idle for {plan.idle_s:g} s")
        results["idle"] = _idle(work, server.url, str(token_file), synced, plan)
    step("done")
    return results


def _state(work: Path, name: str, roster_from: Path | None = None) -> str:
    """A fresh state directory, holding a copy of the synced roster when `roster_from` is given."""
    state = work / name
    state.mkdir()
    if roster_from is not None:
        shutil.copyfile(roster_from / "roster.db", state / "roster.db")
    return str(state)


def _idle(work: Path, url: str, token_file: str, synced: Path, plan: Plan) -> dict:
    state = _state(work, "daemon", synced)
    config = str(work / "tagd.toml")
    idle.write_config(config, url, token_file, state)
    return idle.measure(config, state, str(work / "tagd-run.log"), plan.idle_s, plan.settle_s)


def _progress():
    began = time.perf_counter()

    def step(what: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {what}", file=sys.stderr, flush=True)

    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_of(args)
    os.makedirs(args.cache, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.cache))
    host = machine.describe(str(work))
    try:
        results = measure(plan, work, args.cache)
        host["Load average at the end"] = machine.load()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report.table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"plan": asdict(plan), "machine": host, "results": results}, indent=1))
    out = args.out or (None if args.quick else str(DEFAULT_DOC))
    if out:
        command = "python -m bench" + (" --quick" if args.quick else "")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(report.markdown(results, host, asdict(plan), command, METHOD))
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
