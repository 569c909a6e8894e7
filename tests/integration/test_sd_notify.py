"""`tagd run` as systemd's Type=notify service sees it: the datagrams on a real AF_UNIX socket named by
$NOTIFY_SOCKET (READY, STATUS, WATCHDOG, STOPPING), the watchdog going silent when the daemon is stuck, and logs
of a whole run that never carry a raw client ID or the token."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from daemon import privacy
from daemon.privacy import client_hash, load_or_create_key

from .run_support import (INACTIVE, MEMBER, TAGD, Daemon, FaultProxy, Forwarded, config_toml, send_forwarded,
                          wait_until)

WATCHDOG_USEC = 600_000  # pings every 0.3 s


class NotifySocket:
    """What systemd listens on: a datagram socket; every message the daemon sends is kept, in order."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []

    def pump(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.texts()
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self) -> list[str]:
        return [text for _, text in self.messages]

    def wait_for(self, field: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: next((t for t in self.pump() if field in t.split("\n")), None), timeout,
                          f"{field!r} on the notify socket")

    def pings_since(self, since: float) -> int:
        self.pump()
        return sum(1 for at, text in self.messages if at > since and text == "WATCHDOG=1")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path, monkeypatch):
    sock = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    yield sock
    sock.close()


def run(tmp_path, url: str, token_file: str, level: str = "info", **server) -> Daemon:
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(tmp_path / "state"), url, token_file, logging={"level": level},
                                  server={"connect_timeout_s": 0.2, "read_timeout_s": 0.3, **server}))
    return Daemon(str(config), str(tmp_path / "tagd.log"))


def test_ready_comes_once_running_then_status_pings_and_stopping_on_sigterm(site, notify, tmp_path):
    daemon = run(tmp_path, site.url, site.token_file)
    try:
        ready = notify.wait_for("READY=1")
        assert notify.texts().index(ready) == 0  # nothing claims readiness (or health) before it
        assert ready.startswith("READY=1\nSTATUS=1 scanner · roster ")
        notify.wait_for("STATUS=1 scanner · roster 36 · queue 0 · online")  # the first sync is reflected
        daemon.scan(MEMBER)
        wait_until(lambda: daemon.acknowledged() == [MEMBER], what="the scan")
        wait_until(lambda: len(site.checkins()) == 1, what="the check-in delivered")
        assert notify.pings_since(time.monotonic() - 10) >= 2
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        assert notify.pump()[-1] == "STOPPING=1\nSTATUS=stopping"
    finally:
        daemon.kill() if daemon.proc.poll() is None else None


def test_a_stopped_main_loop_sends_no_watchdog_pings(site, notify, tmp_path):
    daemon = run(tmp_path, site.url, site.token_file)
    try:
        notify.wait_for("READY=1")
        wait_until(lambda: notify.pings_since(0) >= 2, what="watchdog pings")
        daemon.signal(signal.SIGSTOP)
        time.sleep(0.1)  # a datagram sent just before the stop may still be on its way
        stopped_at = time.monotonic()
        time.sleep(3 * WATCHDOG_USEC / 1e6)
        assert notify.pings_since(stopped_at) == 0
        daemon.signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_until(lambda: notify.pings_since(resumed_at) >= 1, what="pings after SIGCONT")  # the control
    finally:
        daemon.signal(signal.SIGCONT)
        daemon.stop()


def test_a_stuck_delivery_thread_stops_the_watchdog_pings_and_says_why(site, notify, tmp_path, monkeypatch):
    monkeypatch.setenv("TAGD_DEBUG_STALL_DELIVERY", "1")
    daemon = run(tmp_path, site.url, site.token_file)
    try:
        notify.wait_for("READY=1")
        wait_until(lambda: notify.pings_since(0) >= 2, what="pings while delivery is idle")
        daemon.scan(MEMBER)  # its upload hangs: the delivery thread takes no more work
        wait_until(lambda: daemon.acknowledged() == [MEMBER], what="the scan")
        unhealthy = notify.wait_for("STATUS=1 scanner · roster 36 · queue 1 · online · UNHEALTHY: delivery thread "
                                    "stuck for 2 s")  # stuck after 3 × (0.2 + 0.3) s
        silent_from = next(at for at, text in notify.messages if text == unhealthy)
        time.sleep(3 * WATCHDOG_USEC / 1e6)
        assert notify.pings_since(silent_from) == 0
        assert "health: delivery thread stuck" in daemon.log()
        assert daemon.acknowledged() == [MEMBER] and site.checkins() == []  # the scan stays queued, not lost
    finally:
        daemon.stop()


def test_without_notify_socket_nothing_is_sent_and_the_daemon_runs(site, tmp_path, monkeypatch):
    sock = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    daemon = run(tmp_path, site.url, site.token_file)
    try:
        daemon.scan(MEMBER)
        wait_until(lambda: daemon.acknowledged() == [MEMBER], what="the scan")
        assert daemon.stop() == 0 and sock.pump() == []
    finally:
        sock.close()


def test_an_invalid_configuration_exits_78_without_ever_saying_ready(notify, tmp_path):
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(tmp_path / "state"), "", "", scan={"case": "shout"}))
    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    assert daemon.wait() == 78
    assert notify.pump() == []


def test_logs_of_a_whole_run_carry_no_client_id_nor_the_token(site, notify, tmp_path):
    """`tagd run` as the service runs it (decisions to the log), at debug level: scans of several IDs (member,
    inactive, unknown, invalid), a server refusal whose message echoes the request, deliveries, link mode's
    SIGUSR2. IDs and scanned text appear only as keyed hashes; the token not at all."""
    proxy = FaultProxy(site.url)
    proxy.inject("/v1/device/checkins", "echo", _echoing_refusal)
    config = tmp_path / "tagd.toml"
    config.write_text(config_toml(str(tmp_path / "state"), proxy.url, site.token_file, logging={"level": "debug"},
                                  server={"allow_insecure_http": True}))
    log_path = tmp_path / "tagd.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([*TAGD, "run", "--config", str(config)], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=log_file)
    rest = [INACTIVE, "M1002", "UNKNOWN99", "bad tag!"]
    try:
        notify.wait_for("READY=1")
        wait_until(lambda: "roster full sync" in log_path.read_text(), what="the first roster sync")
        proc.stdin.write(f"{MEMBER}\n".encode())
        proc.stdin.flush()
        wait_until(lambda: "moved to dead letters" in log_path.read_text(), what="the refused check-in buried")
        proc.stdin.write("".join(f"{text}\n" for text in rest).encode())
        proc.stdin.flush()
        wait_until(lambda: len(site.checkins()) == 3, what="the other check-ins delivered")
        proc.send_signal(signal.SIGUSR2)
        wait_until(lambda: "link mode" in log_path.read_text(), what="link mode in the log")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proxy.close()
        if proc.poll() is None:
            proc.kill()
    log = log_path.read_text()
    privacy.set_key(load_or_create_key(str(tmp_path / "state" / "hash.key")))
    assert f"WELCOME — client {client_hash(MEMBER)}" in log  # decisions are logged, by hash (the control)
    assert "DENIED · unknown tag, please see the desk — client " + client_hash("UNKNOWN99") in log
    assert "HTTP 400 invalid_request" in log and "is not valid under the given schema" in log
    for secret in [MEMBER, INACTIVE, "M1002", "UNKNOWN99", "bad tag", site.token]:
        assert secret.lower() not in log.lower(), f"{secret!r} in the log"


def _echoing_refusal(handler, _) -> None:
    """A 400 whose message repeats the request body, as the reference server's contract violations do."""
    seen = next(s for s in reversed(handler.server.seen) if s.client_port == handler.client_address[1])
    body = json.dumps({"error": {"code": "invalid_request",
                                 "message": f"{seen.body.decode()} is not valid under the given schema"}})
    send_forwarded(handler, Forwarded(400, {"Content-Type": "application/json"}, body.encode()))
