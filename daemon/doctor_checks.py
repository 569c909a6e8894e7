"""The checks of `tagd doctor` that are not about devices: configuration, token, server, clock, disk, queue, unit.

Each check is a small function of what it looks at (paths, a client, a clock, a command runner) and returns a
`Check` value; nothing here prints or exits, so every check is tested by handing it a broken world.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from . import bootstrap, config
from .api_types import Health
from .errors import AuthRejected, ConfigError, ServerError, StoreError, Unreachable
from .settings import Settings

CLOCK_TOLERANCE_S = 30.0
MIN_FREE_BYTES = 100 * 1024 * 1024
OLD_QUEUE_S = 3600.0  # a check-in waiting longer than this means delivery is stuck, not merely slow
REPROVISION = "re-enrol: sudo tagd provision --server URL --code NEW_CODE (the queue is kept)"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report. ok: True passed, False failed, None skipped (not applicable here)."""

    name: str
    ok: bool | None
    detail: str
    hint: str = ""
    warning: bool = False  # passed, but worth a look (low disk space, old queued check-ins)

    @property
    def status(self) -> str:
        if self.ok is None:
            return "skip"
        if not self.ok:
            return "fail"
        return "warn" if self.warning else "pass"

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "ok": self.ok, "detail": self.detail, "hint": self.hint}


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, hint: str) -> Check:
    return Check(name, False, detail, hint)


def skipped(name: str, detail: str) -> Check:
    return Check(name, None, detail)


def warned(name: str, detail: str, hint: str) -> Check:
    return Check(name, True, detail, hint, warning=True)


# ---- configuration and token -------------------------------------------------------------------------------------

def check_config(cli_path: str | None, environ: Mapping[str, str]) -> tuple[Check, Settings | None]:
    path, explicit = config.resolve_path(cli_path, environ)
    try:
        settings = config.load(path, explicit)
    except ConfigError as exc:
        return failed("config", str(exc), "fix the named key (config/tagd.example.toml documents every key); "
                                          "`tagd config` shows the effective settings"), None
    if not os.path.exists(path):
        return failed("config", f"{path} does not exist", "run tagd provision, or pass --config FILE"), None
    server = settings.server.url or "no server (standalone)"
    return passed("config", f"{path}: valid; {len(settings.scanners)} scanner(s); server {server}"), settings


def token_location(settings: Settings, environ: Mapping[str, str], credential_file: str) -> str:
    """Where the daemon reads the token: server.token_file, else $CREDENTIALS_DIRECTORY (under systemd), else the
    credential file the unit loads (what a shell outside the service sees)."""
    return bootstrap.token_path(settings, environ) or credential_file


def check_token(settings: Settings, path: str) -> tuple[Check, str | None]:
    if not settings.server.url:
        return skipped("token", "no server.url: a standalone reader needs no token"), None
    try:
        mode = os.stat(path).st_mode
        with open(path) as file:
            token = file.read().strip()
    except OSError as exc:
        return failed("token", f"cannot read {path}: {exc.strerror or exc}", REPROVISION), None
    if not token:
        return failed("token", f"{path} is empty", REPROVISION), None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return failed("token", f"{path} is readable by others (mode {stat.S_IMODE(mode):04o})",
                      f"chmod 600 {path}, and re-enrol if others may have read it"), token
    return passed("token", f"present in {path} (mode {stat.S_IMODE(mode):04o})"), token


# ---- the server ----------------------------------------------------------------------------------------------------

def check_server(client) -> tuple[Check, Health | None]:
    """GET /v1/health: the network, the name, the TLS certificate (verified against server.ca_file)."""
    try:
        health = client.health()
    except Unreachable as exc:
        tls = "TLS" in str(exc)
        hint = ("the certificate is not trusted: set server.ca_file to the CA bundle that signed it "
                "(tagd provision --ca FILE), and check the host name in server.url" if tls else
                "check server.url, the network (ip route, DNS) and that the server is running")
        return failed("server", str(exc), hint), None
    except ServerError as exc:
        return failed("server", str(exc), "the server answered but not as expected: check server.url "
                                          "(a proxy or another service?)"), None
    return passed("server", f"{client.base_url} answered: status {health.status}, API {health.api_version}"), health


def check_token_accepted(client) -> Check:
    """GET /v1/device/me with the token: the device is enrolled and not revoked."""
    try:
        me = client.me()
    except AuthRejected as exc:
        return failed("token accepted", str(exc), REPROVISION)
    except ServerError as exc:
        return failed("token accepted", str(exc), "see the server check; try again when the server answers")
    return passed("token accepted", f"device {me.device_id} {me.name!r}, location {me.location_id}")


def check_clock(health: Health, now: datetime, tolerance_s: float = CLOCK_TOLERANCE_S) -> Check:
    if health.server_time is None:
        return skipped("clock", "the server sent no usable Date header")
    skew = (now - health.server_time).total_seconds()
    detail = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server (tolerance {tolerance_s:g} s)"
    if abs(skew) > tolerance_s:
        return failed("clock", detail, "turn on network time: timedatectl set-ntp true; timedatectl status "
                                       "(a Pi has no battery clock: it needs NTP after every boot)")
    return passed("clock", detail)


# ---- local state ---------------------------------------------------------------------------------------------------

def check_state_dir(path: str, min_free: int = MIN_FREE_BYTES) -> Check:
    """The directory exists, a file can really be created in it (root passes any permission test), disk space."""
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
        fs = os.statvfs(path)
    except OSError as exc:
        return failed("state dir", f"cannot write in {path}: {exc.strerror or exc}",
                      "tagd provision creates it; check state.dir, the mount (read-only?) and its owner")
    free = fs.f_bavail * fs.f_frsize
    detail = f"{path} writable, {free / 2**20:.0f} MB free"
    if free < min_free:
        return warned("state dir", detail, f"below {min_free / 2**20:.0f} MB: free space (journal: "
                                           "journalctl --vacuum-size=50M) or the queue may fill the disk")
    return passed("state dir", detail)


def check_sqlite(version: str = sqlite3.sqlite_version) -> Check:
    from .sqlite_util import WAL_CONCURRENCY_FIX

    numbers = tuple(int(part) for part in version.split(".")[:3])
    if numbers < (3, 24, 0):
        return failed("sqlite", f"SQLite {version} is too old (tagd needs 3.24 or newer)",
                      "use Raspberry Pi OS / Debian 12 or newer")
    note = "" if numbers >= WAL_CONCURRENCY_FIX else " (before 3.51.3: tagd keeps one writer per database, as needed)"
    return passed("sqlite", f"SQLite {version}{note}")


def check_outbox(state_dir: str, now: float, old_s: float = OLD_QUEUE_S) -> Check:
    """Queue depth and age, dead letters. Read-only: the running daemon's writer is never disturbed."""
    from .outbox import Outbox

    path = os.path.join(state_dir, "outbox.db")
    if not os.path.exists(path):
        return passed("queue", "no check-ins recorded yet")
    try:
        with Outbox(path, readonly=True) as outbox:
            depth, oldest, dead = outbox.depth(), outbox.oldest_pending(), outbox.dead_letter_count()
    except StoreError as exc:
        return failed("queue", str(exc), f"keep a copy of {path} before anything else; see the log")
    age = 0.0 if oldest is None else now - oldest
    detail = f"{depth} check-in(s) waiting" + (f", oldest {age / 60:.0f} min old" if oldest else "") + \
             f"; {dead} dead letter(s)"
    if age > old_s:
        return warned("queue", detail, "delivery is stuck: see the server and token checks and "
                                       "journalctl -u tagd; nothing is lost while it waits")
    if dead:
        return warned("queue", detail, "the server refused some check-ins for good: tagd status, and the log")
    return passed("queue", detail)


# ---- the service -----------------------------------------------------------------------------------------------------

Runner = Callable[[list[str]], tuple[int, str]]


def run_command(argv: list[str]) -> tuple[int, str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return result.returncode, (result.stdout.strip() or result.stderr.strip())


def systemd_booted() -> bool:
    """sd_booted(3): this machine runs systemd as its init (a container or chroot may have systemctl without it)."""
    return os.path.isdir("/run/systemd/system")


def check_unit(which: Callable[[str], str | None], run: Runner = run_command, unit: str = "tagd",
               booted: Callable[[], bool] = systemd_booted) -> Check:
    systemctl = which("systemctl")
    if systemctl is None or not booted():
        return skipped("service", "systemd is not running here" if systemctl else "no systemctl on this machine")
    status, text = run([systemctl, "is-active", unit])
    if status == 0:
        return passed("service", f"{unit} is {text or 'active'}")
    return failed("service", f"{unit} is {text or 'not active'}",
                  f"systemctl enable --now {unit}; why it stopped: journalctl -u {unit} -b")
