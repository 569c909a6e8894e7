"""`tagd provision` into a temporary root, against the reference server on loopback (plain HTTP and TLS)."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
import stat
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import trustme

from daemon.api_client import ServerClient
from daemon.errors import AuthRejected, ConfigError
from daemon.outbox import CheckinEvent, Outbox
from daemon.provision import Host, ProvisionError, Request, provision
from daemon.settings import ServerSettings
from server.demo import seed_demo
from server.embedded import start_server

from .server_support import Clock

REPO = Path(__file__).resolve().parents[2]
TAGD_BIN = str(Path(sys.executable).parent / "tagd")
MACHINE_ID = "0123456789abcdef0123456789abcdef"
SCANNERS = '\n# the front door scanner\n[[scanners]]\ntype = "serial"\nname = "door"\nport = "/dev/ttyACM0"\n'


class Office:
    """The reference server with a demo business; issues enrolment codes through the staff API."""

    def __init__(self, url: str, seed: dict, clock: Clock):
        self.url, self.seed, self.clock = url, seed, clock

    def code(self, ttl_s: int = 3600) -> str:
        reply = requests.post(f"{self.url}/v1/enrolment-codes", timeout=5,
                              headers={"Authorization": f"Bearer {self.seed['staff_token']}"},
                              json={"location_id": self.seed["locations"][0]["id"], "ttl_seconds": ttl_s})
        assert reply.status_code == 201, reply.text
        return reply.json()["code"]


@pytest.fixture
def office(tmp_path):
    db = str(tmp_path / "server.db")
    seed = seed_demo(db)
    clock = Clock(datetime.now(timezone.utc))
    with start_server(db, clock=clock) as handle:
        yield Office(handle.url, seed, clock)


@pytest.fixture
def root(tmp_path) -> Path:
    return make_root(tmp_path / "root")


def make_root(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "machine-id").write_text(MACHINE_ID + "\n")
    (root / "etc" / "hostname").write_text("reader-7\n")
    return root


def host(**overrides) -> Host:
    return Host(**{"tagd": TAGD_BIN, "systemd_dir": str(REPO / "systemd"), **overrides})


def run(office_url: str, code: str, root: Path, **options) -> str:
    out = io.StringIO()
    provision(Request(office_url, code, root=str(root), **options), host(), out)
    return out.getvalue()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root with its mode and content, and every directory: to prove nothing changed."""
    found = {}
    for path in sorted(root.rglob("*")):
        content = path.read_bytes() if path.is_file() else b"<dir>"
        found[str(path.relative_to(root))] = (stat.S_IMODE(path.stat().st_mode), content)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def device_me(url: str, token: str, ca_file: str = ""):
    with ServerClient(ServerSettings(url=url, ca_file=ca_file), token) as client:
        return client.me()


def test_provisioning_writes_token_config_state_dir_and_unit_with_their_modes(office, root):
    out = run(office.url, office.code(), root, name="front door")
    token_file = root / "etc/tagd/token"
    token = token_file.read_text().strip()
    assert mode(token_file) == 0o600 and mode(root / "etc/tagd") == 0o755
    assert device_me(office.url, token).name == "front door"  # the stored token is the one the server issued
    assert token not in out
    config = tomllib.loads((root / "etc/tagd/tagd.toml").read_text())
    assert config["server"] == {"url": office.url, "token_file": "", "ca_file": ""}
    assert mode(root / "etc/tagd/tagd.toml") == 0o644
    assert (root / "var/lib/tagd").is_dir() and mode(root / "var/lib/tagd") == 0o750
    unit = (root / "etc/systemd/system/tagd.service").read_text()
    assert f"ExecStart={TAGD_BIN} run" in unit and "@TAGD@" not in unit
    assert "LoadCredential=tagd-token:/etc/tagd/token" in unit  # the token went where the unit loads it from
    for rules in (REPO / "systemd").glob("*.rules"):
        assert (root / "etc/udev/rules.d" / rules.name).is_file()
    assert "next steps" in out and "add your scanner" in out


def test_the_device_name_defaults_to_the_targets_host_name_and_the_hardware_id_hides_the_machine_id(office, root):
    code = office.code()
    planned = run(office.url, code, root, dry_run=True)
    assert "as 'reader-7' (hardware id machine:" in planned and MACHINE_ID not in planned
    run(office.url, code, root)
    token = (root / "etc/tagd/token").read_text().strip()
    assert device_me(office.url, token).name == "reader-7"


def test_provisioning_again_replaces_the_token_and_keeps_scanners_comments_and_the_queue(office, root):
    run(office.url, office.code(), root)
    config_file, token_file = root / "etc/tagd/tagd.toml", root / "etc/tagd/token"
    config_file.write_text(config_file.read_text() + SCANNERS)
    first_config, first_token = config_file.read_text(), token_file.read_text().strip()
    outbox_path = root / "var/lib/tagd/outbox.db"
    with Outbox(str(outbox_path)) as outbox:
        outbox.record(CheckinEvent.new("M1001", "door", 1_700_000_000.0, "accepted", True, "accepted"))
    queue_before = hashlib.sha256(outbox_path.read_bytes()).hexdigest()

    out = run(office.url, office.code(), root)

    second_token = token_file.read_text().strip()
    assert second_token != first_token and mode(token_file) == 0o600
    assert device_me(office.url, second_token).device_id != device_me(office.url, first_token).device_id
    assert config_file.read_text() == first_config  # same server: the [server] keys already said so
    assert "add your scanner" not in out
    assert hashlib.sha256(outbox_path.read_bytes()).hexdigest() == queue_before
    with Outbox(str(outbox_path), readonly=True) as outbox:
        assert outbox.depth() == 1


def test_a_new_server_url_updates_only_the_server_table_and_keeps_a_backup(office, root, tmp_path):
    config_file = root / "etc/tagd/tagd.toml"
    config_file.parent.mkdir(parents=True)
    old = ('[server]\n# the old server\nurl = "http://127.0.0.1:1"\nread_timeout_s = 7.0\n\n[scan]\nmin_length = 6\n'
           + SCANNERS)
    config_file.write_text(old)
    run(office.url, office.code(), root)
    new = config_file.read_text()
    assert (root / "etc/tagd/tagd.toml.bak").read_text() == old
    assert new.replace(f'url = "{office.url}"', 'url = "http://127.0.0.1:1"') \
              .replace('token_file = ""\nca_file = ""\n', "") == old
    parsed = tomllib.loads(new)
    assert parsed["server"]["read_timeout_s"] == 7.0 and parsed["scan"] == {"min_length": 6}
    assert parsed["scanners"][0]["name"] == "door"


@pytest.mark.parametrize("problem", ["unknown", "used", "expired"])
def test_a_refused_code_writes_nothing_and_says_what_to_do(office, root, problem):
    code = {"unknown": "AAAA-BBBB-CCCC", "used": office.code(), "expired": office.code(ttl_s=60)}[problem]
    if problem == "used":
        run(office.url, code, make_root(root.parent / "another-reader"))
    if problem == "expired":
        office.clock.advance(seconds=61)
    before = snapshot(root)
    with pytest.raises(ProvisionError) as raised:
        run(office.url, code, root)
    message = str(raised.value)
    assert "nothing written" in message
    assert {"unknown": "enrolment_code_unknown", "used": "enrolment_code_used",
            "expired": "enrolment_code_expired"}[problem] in message
    assert ("check the enrolment code" if problem == "unknown" else "ask the office for a new enrolment code") \
        in message
    assert snapshot(root) == before


def test_a_dry_run_writes_nothing_and_leaves_the_code_usable(office, root):
    code = office.code()
    before = snapshot(root)
    out = run(office.url, code, root, dry_run=True)
    assert snapshot(root) == before
    assert "write /etc/tagd/token (mode 0600)" in out and "nothing was written" in out
    run(office.url, code, root)  # the code was not spent
    assert (root / "etc/tagd/token").exists()


def test_an_invalid_existing_config_stops_before_the_code_is_spent(office, root):
    (root / "etc/tagd").mkdir()
    (root / "etc/tagd/tagd.toml").write_text('[scan]\nmin_lenght = 4\n')
    code = office.code()
    before = snapshot(root)
    with pytest.raises(ConfigError, match="min_lenght"):
        run(office.url, code, root)
    assert snapshot(root) == before
    (root / "etc/tagd/tagd.toml").write_text('[scan]\nmin_length = 4\n')
    run(office.url, code, root)


def test_plain_http_to_another_host_is_refused_before_any_request(root):
    with pytest.raises(Exception, match="plain http://"):
        run("http://checkin.example.com", "AAAA", root)
    assert not (root / "etc/tagd").exists()


def test_the_live_system_needs_root_but_a_dry_run_does_not(office, tmp_path):
    with pytest.raises(ProvisionError, match="run it as root"):
        provision(Request(office.url, "AAAA"), host(euid=1000), io.StringIO())


# --- TLS ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def tls_office(tmp_path):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    db = str(tmp_path / "tls-server.db")
    seed = seed_demo(db)
    with start_server(db, ssl_context=context) as handle:
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        yield handle.url, seed["enrolment_code"]["code"], ca_file


def test_with_the_servers_ca_the_bundle_is_installed_and_configured(tls_office, root):
    url, code, ca_file = tls_office
    run(url, code, root, ca=str(ca_file))
    installed = root / "etc/tagd/ca.pem"
    assert installed.read_bytes() == ca_file.read_bytes() and mode(installed) == 0o644
    assert tomllib.loads((root / "etc/tagd/tagd.toml").read_text())["server"]["ca_file"] == "/etc/tagd/ca.pem"
    token = (root / "etc/tagd/token").read_text().strip()
    assert device_me(url, token, str(ca_file)).device_id > 0


def test_a_ca_that_did_not_sign_the_server_certificate_fails_clearly_and_writes_nothing(tls_office, root, tmp_path):
    url, code, _ = tls_office
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    before = snapshot(root)
    with pytest.raises(ProvisionError) as raised:
        run(url, code, root, ca=str(other))
    assert "certificate verify failed" in str(raised.value) and "pass --ca" in str(raised.value)
    assert snapshot(root) == before
    run(url, code, root, ca=str(tls_office[2]))  # the code was not spent by the failed handshake


def test_a_ca_file_that_is_not_pem_is_refused_before_enrolling(tls_office, root, tmp_path):
    url, code, _ = tls_office
    bogus = tmp_path / "ca.der"
    bogus.write_bytes(b"\x30\x82\x01\x0a")
    with pytest.raises(ProvisionError, match="not a PEM certificate bundle"):
        run(url, code, root, ca=str(bogus))


# --- the command line ------------------------------------------------------------------------------------------------

def test_the_command_line_provisions_and_never_prints_the_token(office, root):
    code = office.code()
    result = subprocess.run([TAGD_BIN, "provision", "--server", office.url, "--code", code, "--root", str(root),
                             "--name", "desk"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    token = (root / "etc/tagd/token").read_text().strip()
    assert token not in result.stdout + result.stderr
    assert f"ExecStart={TAGD_BIN} run" in (root / "etc/systemd/system/tagd.service").read_text()
    again = subprocess.run([TAGD_BIN, "provision", "--server", office.url, "--code", code, "--root", str(root)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "enrolment_code_used" in again.stderr
    assert (root / "etc/tagd/token").read_text().strip() == token
    with pytest.raises(AuthRejected):
        device_me(office.url, "not-a-token")
    assert os.path.exists(root / "var/lib/tagd")
