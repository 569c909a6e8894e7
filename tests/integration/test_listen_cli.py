"""`tagd listen --stdin` end to end, as a technician runs it: a real subprocess, real pipes, real signals."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

TAGD = [sys.executable, "-m", "daemon.cli"]


def run_tagd(args, stdin: bytes = b"", env_extra=None, config_text=None, tmp_path=None):
    env = {k: v for k, v in os.environ.items() if k != "TAGD_CONFIG"}
    if config_text is not None:
        path = tmp_path / "tagd.toml"
        path.write_text(textwrap.dedent(config_text))
        args = [*args, "--config", str(path)]
    env.update(env_extra or {})
    return subprocess.run([*TAGD, *args], input=stdin, capture_output=True, env=env, timeout=30)


def test_listen_stdin_prints_one_json_object_per_scan():
    proc = run_tagd(["listen", "--stdin"], b"A123\nab\nA123\nX-12\n\n\xff\xfe\nB456")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(r["text"], r["outcome"], r["reason"], r["client_id"]) for r in rows] == [
        ("A123", "valid", None, "A123"),
        ("ab", "invalid", "too_short", None),
        ("A123", "duplicate", "duplicate", "A123"),
        ("X-12", "invalid", "not_alphanumeric", None),
        ("\\xff\\xfe", "invalid", "not_text", None),
        ("B456", "valid", None, "B456"),
    ]
    assert all(r["source"] == "terminal" and r["at"].endswith("+00:00") for r in rows)


def test_listen_applies_the_configured_case_policy(tmp_path):
    proc = run_tagd(["listen", "--stdin"], b"abc123\n", tmp_path=tmp_path, config_text="""
        [scan]
        case = "upper"
    """)
    assert json.loads(proc.stdout)["client_id"] == "ABC123"


def test_a_bad_config_value_names_file_and_key_and_exits_78(tmp_path):
    proc = run_tagd(["listen", "--stdin"], tmp_path=tmp_path, config_text="""
        [scan]
        case = "shout"
    """)
    assert proc.returncode == 78
    assert 'tagd.toml: scan.case: must be one of preserve, upper, lower, got "shout"' in proc.stderr.decode()
    assert proc.stdout == b""


def test_listen_without_any_scanner_explains_what_to_do(tmp_path):
    proc = run_tagd(["listen"], tmp_path=tmp_path, config_text="")
    assert proc.returncode == 78
    assert "no scanner configured" in proc.stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_listen_exits_cleanly_on_a_signal_with_input_still_open(signum):
    env = {k: v for k, v in os.environ.items() if k != "TAGD_CONFIG"}
    proc = subprocess.Popen([*TAGD, "listen", "--stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdin.write(b"A123\n")
    proc.stdin.flush()
    first = proc.stdout.readline()  # the scan was handled, so the loop and its signal handlers are up
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert json.loads(first)["outcome"] == "valid"
    assert proc.returncode == 0, err
    assert b"Traceback" not in err


def test_version_is_printed():
    proc = run_tagd(["--version"])
    assert proc.returncode == 0 and proc.stdout.decode().startswith("tagd ")
