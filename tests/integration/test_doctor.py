"""`tagd doctor` against a healthy reader and against each way it can be broken: the reference server on loopback,
a scripted fault server (skewed clock), a serial scanner on a real pty, HID devices on the fake evdev backend in a
temporary /dev/input, an LED class directory in a temporary /sys/class/leds."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest
import trustme
from evdev import ecodes

from daemon.api_client import ServerClient
from daemon.doctor import Machine, diagnose, exit_status, format_report
from daemon.doctor_checks import check_state_dir
from daemon.outbox import CheckinEvent, Outbox
from daemon.settings import ServerSettings
from daemon.status import write_status
from drivers.fake_evdev import FakeEvdevBackend, FakeInputDevice
from server.demo import seed_demo
from server.embedded import start_server

from .fault_http import FaultServer, reply_json

TAGD_BIN = str(Path(sys.executable).parent / "tagd")


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    """The reference server and a token of an enrolled device."""
    db = str(tmp_path_factory.mktemp("office") / "server.db")
    code = seed_demo(db)["enrolment_code"]["code"]
    with start_server(db) as handle:
        with ServerClient(ServerSettings(url=handle.url)) as client:
            token = client.enrol(code, "hw-doctor", "doctor's reader").token
        yield handle.url, token


class Reader:
    """A reader's files and devices in tmp_path; `config()` writes tagd.toml, `diagnose()` runs the doctor."""

    def __init__(self, tmp_path: Path, url: str, token: str):
        self.tmp = tmp_path
        self.url = url
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.token_file = tmp_path / "token"
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o600)
        (tmp_path / "input").mkdir()
        self.backend = FakeEvdevBackend(str(tmp_path / "input"))
        self.scanner = self.backend.plug(FakeInputDevice(self.backend.event_path(3), name="Honeywell 1900",
                                                         by_id="usb-Honeywell_1900-event-kbd"))
        self.button = self.backend.plug(FakeInputDevice(self.backend.event_path(4), name="button@11", vendor=0,
                                                        product=0, keys=(ecodes.KEY_PROG1,)))
        self.leds = tmp_path / "leds"
        (self.leds / "green").mkdir(parents=True)
        (self.leds / "green" / "brightness").write_text("0\n")
        self.controller, tty = os.openpty()
        self.serial_port = os.ttyname(tty)
        os.close(tty)
        self.config_file = tmp_path / "tagd.toml"
        self.config()

    def config(self, **server) -> None:
        values = {"url": self.url, "token_file": str(self.token_file), **server}
        table = "".join(f'{key} = "{value}"\n' for key, value in values.items())
        self.config_file.write_text(
            f"[server]\n{table}\n[state]\ndir = \"{self.state}\"\n\n"
            f'[[scanners]]\ntype = "hid"\nname = "front"\nname_pattern = "Honeywell*"\n\n'
            f'[[scanners]]\ntype = "serial"\nname = "side"\nport = "{self.serial_port}"\n\n'
            f'[button]\ntype = "evdev"\nname_pattern = "button@*"\n\n'
            f'[[outputs]]\ntype = "led"\nname = "green"\nrole = "green"\npath = "{self.leds / "green"}"\n')

    def machine(self, **overrides) -> Machine:
        return Machine(**{"environ": {}, "credential_file": str(self.tmp / "no-credential"),
                          "input_backend": lambda: self.backend, "leds_dir": str(self.leds),
                          "which": lambda name: None, **overrides})

    def diagnose(self, **overrides) -> dict[str, object]:
        checks = diagnose(str(self.config_file), self.machine(**overrides))
        self.report = format_report(checks)
        self.exit_status = exit_status(checks)
        return {check.name: check for check in checks}

    def close(self) -> None:
        os.close(self.controller)


@pytest.fixture
def reader(tmp_path, office):
    reader = Reader(tmp_path, *office)
    yield reader
    reader.close()


def statuses(checks: dict) -> dict[str, str]:
    return {name: check.status for name, check in checks.items()}


def test_a_healthy_reader_passes_every_check(reader):
    checks = reader.diagnose()
    assert statuses(checks) == {
        "config": "pass", "token": "pass", "server": "pass", "token accepted": "pass", "clock": "pass",
        "scanner front": "pass", "scanner side": "pass", "button": "pass", "output green": "pass",
        "state dir": "pass", "sqlite": "pass", "queue": "pass", "service": "skip"}, reader.report
    assert reader.exit_status == 0 and "all checks passed" in reader.report
    assert "doctor's reader" in checks["token accepted"].detail
    assert reader.scanner.grabbed_by is None and reader.backend.open_handles == []  # probed, then released


def test_an_invalid_config_fails_and_names_the_key(reader):
    reader.config_file.write_text('[scan]\nmin_length = "four"\n')
    checks = reader.diagnose()
    assert checks["config"].status == "fail" and "scan.min_length" in checks["config"].detail
    assert checks["everything else"].status == "skip" and reader.exit_status == 1
    assert "fix:" in reader.report


def test_a_missing_config_file_fails(reader):
    reader.config_file.unlink()
    assert reader.diagnose()["config"].status == "fail"


def test_a_missing_token_fails_with_the_re_enrol_hint(reader):
    reader.token_file.unlink()
    checks = reader.diagnose()
    assert checks["token"].status == "fail" and "tagd provision" in checks["token"].hint
    assert checks["server"].status == "pass" and checks["token accepted"].status == "skip"
    assert reader.exit_status == 1


def test_without_token_file_the_credential_the_unit_loads_is_checked(reader):
    reader.config(token_file="")
    assert reader.diagnose()["token"].status == "fail"
    checks = reader.diagnose(credential_file=str(reader.token_file))
    assert checks["token"].status == "pass" and checks["token accepted"].status == "pass"
    via_systemd = reader.diagnose(environ={"CREDENTIALS_DIRECTORY": str(reader.tmp / "creds")})
    assert str(reader.tmp / "creds" / "tagd-token") in via_systemd["token"].detail


def test_a_token_others_can_read_fails(reader):
    reader.token_file.chmod(0o644)
    check = reader.diagnose()["token"]
    assert check.status == "fail" and "chmod 600" in check.hint


def test_a_rejected_token_fails_token_accepted(reader):
    reader.token_file.write_text("revoked-or-never-issued\n")
    checks = reader.diagnose()
    assert checks["token"].status == "pass"
    assert checks["token accepted"].status == "fail" and "401" in checks["token accepted"].detail
    assert "tagd provision" in checks["token accepted"].hint


def test_an_unreachable_server_fails_and_skips_what_needs_it(reader):
    reader.config(url="http://127.0.0.1:9")
    checks = reader.diagnose()
    assert checks["server"].status == "fail" and "cannot reach" in checks["server"].detail
    assert checks["token accepted"].status == checks["clock"].status == "skip"


def test_a_certificate_from_another_ca_fails_with_the_ca_file_hint(reader, tmp_path):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with start_server(str(tmp_path / "tls.db"), ssl_context=context) as handle:
        reader.config(url=handle.url, ca_file=str(other))
        check = reader.diagnose()["server"]
    assert check.status == "fail" and "certificate verify failed" in check.detail and "ca_file" in check.hint


def test_a_clock_far_from_the_servers_fails(reader):
    fault = FaultServer()
    try:
        skewed = {"Date": formatdate(time.time() - 300, usegmt=True)}
        fault.on("/v1/health", reply_json(200, {"status": "ok", "api_version": "1"}, skewed))
        fault.on("/v1/device/me", reply_json(200, {"device_id": 1, "name": "r", "business_id": 1, "location_id": 1,
                                                   "id_min_length": 4, "id_max_length": 32}, skewed))
        reader.config(url=fault.url)
        checks = reader.diagnose()
    finally:
        fault.close()
    assert checks["server"].status == checks["token accepted"].status == "pass"
    skew = int(checks["clock"].detail.split(" s ahead of the server")[0])
    assert checks["clock"].status == "fail" and 300 <= skew <= 302  # the Date header counts whole seconds
    assert "timedatectl" in checks["clock"].hint


def test_unplugged_scanners_fail(reader):
    reader.backend.unplug(reader.scanner.path)
    os.close(reader.controller)
    reader.controller = os.open(os.devnull, os.O_RDONLY)
    reader.config_file.write_text(reader.config_file.read_text().replace(reader.serial_port, "/dev/ttyACM97"))
    checks = reader.diagnose()
    assert checks["scanner front"].status == "fail" and "name_pattern 'Honeywell*'" in checks["scanner front"].detail
    assert checks["scanner side"].status == "fail" and "/dev/ttyACM97" in checks["scanner side"].detail
    assert "tagd devices" in checks["scanner side"].hint


def test_a_scanner_grabbed_by_another_program_fails_unless_the_running_tagd_holds_it(reader):
    other = reader.backend.open(reader.scanner.path)
    other.grab()
    assert reader.diagnose()["scanner front"].status == "fail"
    write_status(str(reader.state), {"pid": os.getpid(), "scanners": {
        "front": {"state": "attached", "detail": f"{reader.scanner.path} (Honeywell 1900)"}}})
    check = reader.diagnose()["scanner front"]
    assert check.status == "pass" and "running tagd" in check.detail
    other.close()


def test_an_unreadable_scanner_node_says_which_group_is_missing(reader):
    reader.backend.unplug(reader.scanner.path)
    reader.backend.plug(FakeInputDevice(reader.backend.event_path(5), name="Honeywell 1900", readable=False))
    check = reader.diagnose()["scanner front"]
    assert check.status == "fail" and "no read access" in check.detail and "'input'" in check.hint


def test_a_missing_button_and_led_fail_with_the_overlay_hint(reader):
    reader.backend.unplug(reader.button.path)
    (reader.leds / "green" / "brightness").unlink()
    checks = reader.diagnose()
    assert checks["button"].status == "fail" and "gpio-key" in checks["button"].hint
    assert checks["output green"].status == "fail" and "gpio-led" in checks["output green"].hint


def test_a_state_dir_that_cannot_be_written_fails(reader):
    blocker = reader.tmp / "a-file"
    blocker.write_text("")
    reader.config_file.write_text(reader.config_file.read_text().replace(str(reader.state), str(blocker / "state")))
    check = reader.diagnose()["state dir"]
    assert check.status == "fail" and "cannot write" in check.detail


def test_little_free_space_is_a_warning(reader):
    check = check_state_dir(str(reader.state), min_free=1 << 60)
    assert check.status == "warn" and "MB free" in check.detail


def test_check_ins_queued_for_long_are_a_warning(reader):
    with Outbox(str(reader.state / "outbox.db")) as outbox:
        outbox.record(CheckinEvent.new("M1001", "front", time.time() - 7200, "accepted", True, "accepted"))
    checks = reader.diagnose()
    assert checks["queue"].status == "warn" and "1 check-in(s) waiting, oldest 120 min old" in checks["queue"].detail
    assert reader.exit_status == 0 and "1 warning(s)" in reader.report


def test_an_inactive_unit_fails_and_an_active_one_passes(reader):
    asked = []

    def systemctl(state: str, status: int):
        return lambda argv: asked.append(argv) or (status, state)

    common = {"which": lambda name: f"/usr/bin/{name}", "systemd_booted": lambda: True}
    inactive = reader.diagnose(run=systemctl("inactive", 3), **common)["service"]
    assert inactive.status == "fail" and "journalctl -u tagd" in inactive.hint
    assert reader.diagnose(run=systemctl("active", 0), **common)["service"].status == "pass"
    assert asked[0] == ["/usr/bin/systemctl", "is-active", "tagd"]
    assert reader.diagnose(which=lambda name: "/usr/bin/systemctl", systemd_booted=lambda: False)["service"] \
        .status == "skip"


def test_the_command_line_reports_json_and_exits_non_zero_on_a_failure(reader):
    env = {**os.environ, "PATH": os.path.dirname(TAGD_BIN)}  # no systemctl on PATH: the service check skips
    reader.config_file.write_text(
        f'[server]\nurl = "{reader.url}"\ntoken_file = "{reader.token_file}"\n[state]\ndir = "{reader.state}"\n'
        f'[[scanners]]\ntype = "serial"\nname = "side"\nport = "{reader.serial_port}"\n')
    healthy = subprocess.run([TAGD_BIN, "doctor", "--config", str(reader.config_file), "--json"],
                             capture_output=True, text=True, timeout=60, env=env)
    report = json.loads(healthy.stdout)
    assert healthy.returncode == 0 and report["ok"] is True, healthy.stdout
    assert {check["name"]: check["status"] for check in report["checks"]}["scanner side"] == "pass"
    reader.token_file.unlink()
    broken = subprocess.run([TAGD_BIN, "doctor", "--config", str(reader.config_file)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert broken.returncode == 1 and "FAIL  token" in broken.stdout and "check(s) failed" in broken.stdout

