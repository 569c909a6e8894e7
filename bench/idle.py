"""`tagd run` as systemd runs it, in its own process: time from exec to READY-equivalent, then idle behaviour.

READY-equivalent: status.json carrying the new process's pid, which Reader.start() writes once the stores are
open and the scanner and worker tasks are started (tagd has no sd_notify yet). Idle: after a settling pause (the
start-up roster sync, the first delivery wake-up), every thread's voluntary context switches (a thread goes to
sleep once per wake-up), CPU time (schedstat, ns) and the resident set are read from /proc over the window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.stats import proc_status

ROOT = Path(__file__).resolve().parent.parent


def write_config(path: str, url: str, token_file: str, state_dir: str) -> None:
    Path(path).write_text(
        '[logging]\nlevel = "warning"\n\n'
        f'[server]\nurl = "{url}"\ntoken_file = "{token_file}"\n\n'
        f'[state]\ndir = "{state_dir}"\n\n'
        '[sync]\njitter_s = 0.0\n\n'  # the start-up sync at once, so that it is over before the idle window
        '[[scanners]]\ntype = "stdin"\nname = "terminal"\n')


def measure(config_path: str, state_dir: str, log_path: str, idle_s: float, settle_s: float) -> dict:
    status_file = os.path.join(state_dir, "status.json")
    if os.path.exists(status_file):
        os.unlink(status_file)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--config", config_path], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=log, stderr=log)
        try:
            ready_s = _wait_ready(daemon, status_file) - start
            time.sleep(settle_s)
            before, began = _threads(daemon.pid), time.perf_counter()
            time.sleep(idle_s)
            after, window = _threads(daemon.pid), time.perf_counter() - began
            memory = proc_status(daemon.pid)
            status = json.loads(Path(status_file).read_text())
        finally:
            daemon.send_signal(signal.SIGTERM)
            exit_status = daemon.wait(timeout=30)
    return {"ready_s": ready_s, "window_s": window, "exit_status": exit_status, "last_sync": status["last_sync"],
            "server_reachable": status["server"]["reachable"], "rss_kb": memory["VmRSS"],
            "hwm_kb": memory["VmHWM"], **_idle_figures(before, after, window)}


def _wait_ready(daemon: subprocess.Popen, status_file: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"tagd run exited with status {daemon.returncode} before it was ready")
        try:
            if f'"pid": {daemon.pid},' in Path(status_file).read_text():
                return time.perf_counter()
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    raise RuntimeError("tagd run did not write its status within a minute")


def _threads(pid: int) -> dict[int, tuple[str, int, int, int]]:
    """tid -> (name, voluntary switches, involuntary switches, CPU ns) for every thread of `pid`."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = proc_status(f"{pid}/task/{tid}")
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            cpu_ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        threads[int(tid)] = (name, status["voluntary_ctxt_switches"], status["nonvoluntary_ctxt_switches"], cpu_ns)
    return threads


def _idle_figures(before: dict, after: dict, window: float) -> dict:
    by_thread: dict[str, float] = {}
    voluntary = involuntary = cpu_ns = 0
    for tid, (name, vol, invol, ns) in after.items():
        _, vol0, invol0, ns0 = before.get(tid, (name, 0, 0, 0))
        voluntary, involuntary, cpu_ns = voluntary + vol - vol0, involuntary + invol - invol0, cpu_ns + ns - ns0
        if vol > vol0:  # Python's thread names are not the kernel's: tell the threads apart by tid
            by_thread[f"{tid} ({name})"] = (vol - vol0) / window
    return {"wakeups_per_s": voluntary / window, "involuntary_per_s": involuntary / window,
            "wakeups_by_thread": by_thread, "cpu_percent": cpu_ns / 1e9 / window * 100, "threads": len(after)}
