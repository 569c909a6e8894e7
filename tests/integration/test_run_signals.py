"""`tagd run` and its signals, as systemd and an operator use them: SIGTERM, SIGHUP (valid and invalid changes),
and `tagd status --json` while it runs and after it stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from daemon.bootstrap import make_reader
from daemon.feedback import LogFeedback
from daemon.outbox import Outbox
from daemon.service import serve
from daemon.settings import StdinScannerSettings
from drivers.terminal import StdinScanner

from .run_support import (DEMO_ROSTER_SIZE, INACTIVE, MEMBER, TAGD, Daemon, config_toml, reader_settings,
                          tagd_status, wait_until)


@pytest.fixture
def config(site, tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_text(config_toml(str(tmp_path / "state"), site.url, site.token_file))
    return path


def is_up(status: dict) -> bool:
    """The running daemon's own status.json says: synced, scanner attached. (Before the daemon writes it, `tagd
    status` reads the databases, which can show the synced roster a moment before status.json catches up.)"""
    return (status["running"] and status["roster_size"] == DEMO_ROSTER_SIZE
            and status["scanners"].get("terminal", {}).get("state") == "attached")


def started(config, tmp_path) -> Daemon:
    daemon = Daemon(str(config), str(tmp_path / "tagd.log"))
    wait_until(lambda: is_up(tagd_status(str(config))), timeout=30, what="the daemon's status after its first roster sync")
    return daemon


def test_sigterm_exits_0_within_2_s_with_everything_recorded_and_the_databases_closed(site, config, tmp_path):
    daemon = started(config, tmp_path)
    ids = [MEMBER, "M1002", INACTIVE, "ZZZZ9", "M1003"]
    daemon.scan(*ids)
    wait_until(lambda: daemon.acknowledged() == ids, what="the decisions")
    running = tagd_status(str(config))
    began = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert time.monotonic() - began < 2.0
    state = tmp_path / "state"
    assert not [name for name in os.listdir(state) if name.endswith(("-wal", "-shm"))], "a database left open"
    stopped = tagd_status(str(config))
    with Outbox(str(state / "outbox.db"), readonly=True) as outbox:
        queued = [event.client_id for event in outbox.pending(100)]
    assert sorted([c["client_id"] for c in site.checkins()] + queued) == sorted(ids)  # delivered or kept

    assert running["running"] is True and running["pid"] == daemon.proc.pid
    assert running["scanners"]["terminal"]["state"] == "attached"
    assert running["server"]["reachable"] is True and running["decision_policy"] == "local"
    assert running["roster_size"] == DEMO_ROSTER_SIZE and 0 <= running["roster_age_s"] < 30
    assert running["dead_letters"] == 0 and running["queue_depth"] is not None
    assert stopped["running"] is False and stopped["scanners"] == {}
    assert stopped["roster_size"] == DEMO_ROSTER_SIZE and stopped["dead_letters"] == 0


def test_sigterm_releases_the_terminal_scanner(tmp_path):
    """In process, where the event loop can be asked: the descriptor is no longer watched, and blocking again."""
    settings = reader_settings(str(tmp_path / "state"))  # a standalone reader: no server needed here
    read_end, write_end = os.pipe()

    async def main():
        loop = asyncio.get_running_loop()
        with open(read_end, "rb", buffering=0, closefd=False) as stream:
            def scanners(scanner_settings: StdinScannerSettings, sink, on_status):
                return StdinScanner(scanner_settings, sink, on_status, stream=stream)

            loop.call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
            await serve(settings, lambda s: make_reader(s, LogFeedback(), scanners), lambda: settings)
            return loop.remove_reader(read_end), os.get_blocking(read_end)

    try:
        assert asyncio.run(main()) == (False, True)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_sighup_with_a_valid_change_reloads_it(site, config, tmp_path):
    daemon = started(config, tmp_path)
    try:
        daemon.scan("m1001")
        wait_until(lambda: daemon.acknowledged() == ["m1001"], what="the first decision")
        config.write_text(config.read_text().replace("[scan]\n", '[scan]\ncase = "upper"\n'))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in daemon.log(), what="the reload")
        daemon.scan("m1002")
        wait_until(lambda: daemon.acknowledged() == ["m1001", "M1002"], what="a decision under the new policy")
        wait_until(lambda: len(site.checkins()) == 2, what="delivery")
    finally:
        assert daemon.stop() == 0
    assert [c["client_id"] for c in site.checkins()] == ["m1001", "M1002"]
    assert daemon.lines[0].startswith("WELCOME")


@pytest.mark.parametrize("change, why", [
    (lambda text: text + "[scan\n", "invalid TOML"),
    (lambda text: text.replace('case = "preserve"', 'case = "shout"'), "scan.case: must be one of"),
    (lambda text: text.split("[[scanners]]")[0], "no scanner configured"),
    (lambda text: text.replace("/token", "/missing-token"), "cannot read the device token"),
], ids=["syntax", "bad value", "no scanner", "no token"])
def test_sighup_with_an_invalid_config_keeps_the_old_one_and_says_why(site, config, tmp_path, change, why):
    config.write_text(config.read_text().replace("[scan]\n", '[scan]\ncase = "preserve"\n'))
    daemon = started(config, tmp_path)
    try:
        config.write_text(change(config.read_text()))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reload refused" in daemon.log(), what="the refusal")
        assert why in daemon.log()
        daemon.scan("m1001")
        wait_until(lambda: daemon.acknowledged() == ["m1001"], what="a decision on the old configuration")
        wait_until(lambda: len(site.checkins()) == 1, what="delivery")
    finally:
        assert daemon.stop() == 0


def test_tagd_link_puts_the_running_reader_into_link_mode_and_the_next_scans_link_a_tag(site, config, tmp_path):
    daemon = started(config, tmp_path)
    try:
        link = subprocess.run([*TAGD, "link", "--config", str(config)], capture_output=True, timeout=30)
        assert link.returncode == 0, link.stderr
        wait_until(lambda: any(line.startswith("LINK MODE") for line in daemon.lines), what="link mode")
        daemon.scan(MEMBER, "TAG4711")  # the member's current ID, then the new tag
        wait_until(lambda: any("press the button to confirm" in line for line in daemon.lines), what="confirm")
        assert daemon.acknowledged() == []  # scans in link mode are not check-ins
    finally:
        assert daemon.stop() == 0


def test_tagd_link_without_a_running_reader_says_so(config):
    proc = subprocess.run([*TAGD, "link", "--config", str(config)], capture_output=True, timeout=30)
    assert proc.returncode == 69 and b"no running reader" in proc.stderr
