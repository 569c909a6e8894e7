"""The shipped systemd/tagd.service, installed by `tagd provision` as-is, running `tagd run` under systemd as PID 1.

The reference server runs in this test process on the guest's loopback. Provisioning (as root, no --root) enrols
with a fresh code and writes the token, tagd.toml, the unit with @TAGD@ filled in and the udev rules, creates the
`gpio` group and reloads systemd and udev; the test then adds the scanner to tagd.toml as docs/install-pi.md says.

Two test-rig steps, neither a change to the unit:
- The unit's ProtectHome=yes hides /root from the service, and this host's virtual environment runs pyenv's
  Python under /root/.pyenv (its libpython too, by rpath). So, as scripts/install.sh does on a reader
  (`python3 -m venv` into /opt/tagd/.venv), the guest gets a venv from Debian's /usr/bin/python3.11 at
  /opt/tagd/.venv; a .pth puts this checkout and its venv's site-packages (tagd's dependencies, the same Python
  minor version) on its path. The checkout may live anywhere (CI clones it under /tmp, which the unit's
  PrivateTmp= hides; or under /root or /home, which ProtectHome= hides), so it is bind-mounted at /opt/tagd/src,
  where a reader's checkout lives, and imported from there (not through the editable install's finder, which
  points at the original path).
- A drop-in sets WatchdogSec=20 (the shipped 60 s) so the watchdog test waits a third as long. Nothing else is
  overridden.
"""

from __future__ import annotations

import grp
import os
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from server import service
from tests.integration.run_support import Site

from .guest_tools import REPO, VirtualScanner, hid_scanner_config

pytestmark = pytest.mark.system

VENV = Path("/opt/tagd/.venv")
SOURCE = Path("/opt/tagd/src")  # this checkout, bind-mounted where the service can see it
TAGD = VENV / "bin" / "tagd"
CONFIG = Path("/etc/tagd/tagd.toml")
DROP_IN = Path("/etc/systemd/system/tagd.service.d/watchdog.conf")
WATCHDOG_S = 20
SCANNER = 7  # VirtualScanner number: its name is "tagd-vm scanner 7"
START_TIMEOUT_S = 180.0  # systemctl start waits for READY=1; the first start reads every module over 9p


def systemctl(*args: str, check: bool = True, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"systemctl {' '.join(args)} exited {result.returncode}: {result.stderr}\n{journal()}")
    return result


def show(*properties: str) -> dict[str, str]:
    out = systemctl("show", "-p", ",".join(properties), "tagd").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal() -> str:
    return subprocess.run(["journalctl", "-u", "tagd", "--no-pager", "-o", "cat"], capture_output=True,
                          text=True, timeout=60).stdout


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                 f"unit: {show('ActiveState', 'SubState', 'NRestarts', 'StatusText')}\n"
                                 f"journal, last lines:\n{chr(10).join(journal().splitlines()[-40:])}")
        time.sleep(0.2)
    return value


def make_readable_venv() -> None:
    """The test-rig venv a DynamicUser can execute (see the module docstring)."""
    SOURCE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(REPO), str(SOURCE)], check=True)
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(VENV)], check=True)
    project = SOURCE / ".venv" / "lib" / "python3.11" / "site-packages"
    (VENV / "lib" / "python3.11" / "site-packages" / "tagd-rig.pth").write_text(
        f"import sys, site; sys.path.insert(0, {str(SOURCE)!r}); site.addsitedir({str(project)!r})\n")
    TAGD.write_text(f"#!{VENV}/bin/python\nimport sys\nfrom daemon.cli import main\nsys.exit(main())\n")
    TAGD.chmod(0o755)


def enrolment_code(site: Site) -> str:
    with site.transaction() as tx:
        code, _ = service.issue_enrolment_code(tx, site.business_id, site.seed["locations"][0]["id"],
                                               timedelta(hours=1), site.now())
    return code


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(str(tmp_path_factory.mktemp("server")))
    yield site
    site.stop()


@pytest.fixture(scope="module")
def installed(site):
    """Provisioned as on a reader, the scanner plugged in and configured, the service started; stopped after."""
    make_readable_venv()
    provision = subprocess.run([str(TAGD), "provision", "--server", site.url, "--code", enrolment_code(site),
                                "--name", "vm reader"], capture_output=True, text=True, timeout=300)
    assert provision.returncode == 0, provision.stdout + provision.stderr
    with CONFIG.open("a") as config:
        config.write("\n[sync]\njitter_s = 0.0\n\n" + hid_scanner_config(pattern=f"tagd-vm scanner {SCANNER}"))
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    DROP_IN.write_text(f"# test rig: the shipped 60 s, shortened\n[Service]\nWatchdogSec={WATCHDOG_S}\n")
    systemctl("daemon-reload")
    with VirtualScanner(SCANNER) as scanner:
        yield {"scanner": scanner, "provision": provision.stdout}
        systemctl("stop", "tagd", check=False)


@pytest.fixture
def running(installed):
    """The service up (started if a test before left it stopped or failed), its scanner attached."""
    if show("ActiveState")["ActiveState"] != "active":
        systemctl("reset-failed", "tagd", check=False)
        systemctl("start", "tagd")
    path = installed["scanner"].path
    wait_for(lambda: f"attached {path} " in journal(), 60, f"the scanner {path} attached")
    return installed


def main_pid() -> int:
    return int(show("MainPID")["MainPID"])


def test_provisioning_installs_the_shipped_unit_with_only_the_command_filled_in(installed):
    shipped = (REPO / "systemd" / "tagd.service").read_text()
    assert Path("/etc/systemd/system/tagd.service").read_text() == shipped.replace("@TAGD@", str(TAGD))
    assert grp.getgrnam("gpio")  # provisioning made the group the unit's SupplementaryGroups= names


def test_the_service_is_running_only_once_it_reported_ready(running):
    state = show("Type", "ActiveState", "SubState", "StatusText", "NotifyAccess")
    assert (state["Type"], state["ActiveState"], state["SubState"]) == ("notify", "active", "running"), state
    wait_for(lambda: "roster 36" in show("StatusText")["StatusText"], 120, "the first roster sync in STATUS=")


def test_it_runs_as_a_dynamic_user_that_reads_its_scanner_through_the_input_group(running):
    pid = main_pid()
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.MULTILINE).group(1).split()
    groups = {int(g) for g in re.search(r"^Groups:\s*(.*)$", status, re.MULTILINE).group(1).split()}
    assert set(uids) != {"0"} and "0" not in uids, status
    assert 61184 <= int(uids[0]) <= 65519  # systemd's range for dynamic users
    assert grp.getgrnam("input").gr_gid in groups and grp.getgrnam("gpio").gr_gid in groups
    node = running["scanner"].path
    info = os.stat(node)
    assert (grp.getgrgid(info.st_gid).gr_name, info.st_mode & 0o777) == ("input", 0o660)  # others may not read it
    assert node in [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]


def test_a_scan_from_the_uinput_scanner_is_checked_in_at_the_server(running, site):
    wait_for(lambda: "roster 36" in show("StatusText")["StatusText"], 120, "the first roster sync")
    running["scanner"].type("M1002")
    [checkin] = wait_for(lambda: [c for c in site.checkins() if c["client_id"] == "M1002"], 60, "the check-in")
    assert checkin["result"] == "accepted", checkin


def test_a_stopped_daemon_is_restarted_by_the_watchdog(running):
    before, restarts = main_pid(), int(show("NRestarts")["NRestarts"])
    systemctl("kill", "-s", "SIGSTOP", "tagd")
    wait_for(lambda: int(show("NRestarts")["NRestarts"]) == restarts + 1, WATCHDOG_S + 90, "the watchdog restart")
    wait_for(lambda: show("ActiveState", "SubState") == {"ActiveState": "active", "SubState": "running"}, 120,
             "READY after the restart")
    assert main_pid() != before
    assert re.search(r"Watchdog timeout", journal()), journal()[-3000:]


def test_a_broken_configuration_stops_the_service_without_a_restart_loop(running):
    good = CONFIG.read_text()
    CONFIG.write_text(good + '\n[scan]\ndebounce_seconds = "soon"\n')
    try:
        assert systemctl("restart", "tagd", check=False).returncode != 0
        failed = wait_for(lambda: (s := show("ActiveState", "Result", "ExecMainStatus", "NRestarts"))
                          ["ActiveState"] == "failed" and s, 60, "the failed state")
        assert (failed["Result"], failed["ExecMainStatus"]) == ("exit-code", "78"), failed
        time.sleep(8)  # four times RestartSec=2: a restart loop would have begun
        assert show("ActiveState", "Result", "ExecMainStatus", "NRestarts") == failed
        assert "debounce_seconds" in journal()  # the reason, naming the key, is in the journal
    finally:
        CONFIG.write_text(good)
        systemctl("reset-failed", "tagd", check=False)
