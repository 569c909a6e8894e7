"""`tagd demo` as a person tries it: a subprocess, IDs typed on its standard input, outcomes read on its output."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading

from .run_support import TAGD, wait_until


def server_checkins(data_dir) -> list[tuple[str, str]]:
    """The demo server's check-ins, read through a read-only connection (the server keeps the only writer)."""
    path = os.path.join(data_dir, "server.db")
    if not os.path.exists(path):
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            return conn.execute("SELECT client_id, result FROM checkins ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def test_demo_shows_each_outcome_and_the_server_records_the_checkins(tmp_path):
    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("TAGD_CONFIG", "NO_COLOR")}
    proc = subprocess.Popen([*TAGD, "demo", "--data-dir", str(data_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(raw.decode().rstrip("\n") for raw in proc.stdout),
                              daemon=True)
    reader.start()
    try:
        proc.stdin.write(b"M1001\nM1007\nZZZZ9\nM1001\n")
        proc.stdin.flush()
        wait_until(lambda: len(server_checkins(data_dir)) == 3, timeout=20, what="the server to record them")
        proc.stdin.close()  # Ctrl-D ends the demo
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert lines[0].startswith("tagd demo · reference server and reader running")
    outcomes = [line for line in lines if " — " in line]
    assert outcomes == ["WELCOME — M1001", "DENIED · membership inactive — M1007",
                        "DENIED · unknown tag, please see the desk — ZZZZ9", "already checked in — M1001"]
    assert server_checkins(data_dir) == [("M1001", "accepted"), ("M1007", "inactive"), ("ZZZZ9", "unknown_client")]
    assert b"Traceback" not in proc.stderr.read()


def test_ctrl_d_right_after_the_last_scan_still_delivers_it_and_link_mode_works(tmp_path):
    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("TAGD_CONFIG", "NO_COLOR")}
    script = b"M1002\n!\nM1005\nNEWTAG77\n!\nNEWTAG77\n"  # check in; link a new tag to M1005; check it in
    proc = subprocess.run([*TAGD, "demo", "--data-dir", str(data_dir)], input=script, capture_output=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "LINK MODE · member found: now scan the new tag" in out and "LINKED" in out
    assert out.rstrip().endswith("WELCOME — NEWTAG77")
    assert server_checkins(data_dir) == [("M1002", "accepted"), ("NEWTAG77", "accepted")]
