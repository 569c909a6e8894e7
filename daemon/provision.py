"""`tagd provision`: enrol this reader with the server and install what the service needs.

Three phases, so that a failure leaves nothing half done:
1. prepare (reads only): the URL, the CA bundle, the existing tagd.toml and its update, the unit and udev files
   from the package, the hardware id. Anything wrong here stops before the enrolment code is spent.
2. enrol (the network): one POST /v1/device/enrol. A refused code or an untrusted certificate stops here, with
   nothing written.
3. apply the plan: a list of steps (values: MakeDir, WriteFile, Run) written in order, the token first, each file
   atomically. `--dry-run` prints the same plan without phases 2 and 3.

Running it again is safe: the token is replaced, the [server] table's url/ca_file/token_file are updated with a
backup of the old file, every other table stays as written, and the state directory (the check-in queue) is never
touched beyond creating it. The token is never printed.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from . import bootstrap, config
from .bootstrap import INSTALLED_TOKEN
from .api_client import ServerClient
from .api_http import server_base_url
from .config_edit import checked_update
from .errors import AuthRejected, Conflict, ConfigError, RequestRejected, ServerError, TagdError, Unreachable
from .hostid import default_name, hardware_id
from .provision_template import CONFIG_TEMPLATE

CONFIG_FILE = config.DEFAULT_PATH
TOKEN_FILE = INSTALLED_TOKEN  # where the packaged unit's LoadCredential=tagd-token reads the token from
CA_FILE = "/etc/tagd/ca.pem"
UNIT_DIR = "/etc/systemd/system"
UDEV_DIR = "/etc/udev/rules.d"
PACKAGE_SYSTEMD_DIR = str(Path(__file__).resolve().parent.parent / "systemd")
EXEC_PLACEHOLDER = "@TAGD@"  # in the packaged unit: the tagd executable's absolute path


class ProvisionError(TagdError):
    """Provisioning cannot go on; the message says why and what to do. Nothing has been written."""


@dataclass(frozen=True)
class Request:
    server: str
    code: str
    name: str | None = None
    ca: str | None = None  # a PEM bundle to trust for the server (copied to CA_FILE)
    root: str | None = None  # write everything under this directory (image building, tests)
    dry_run: bool = False


@dataclass(frozen=True)
class MakeDir:
    target: str  # the path on the reader (under the root when one is given)
    mode: int


@dataclass(frozen=True)
class WriteFile:
    target: str
    content: bytes = field(repr=False)
    mode: int
    what: str  # for the plan: 'the device token', 'configuration', ...
    secret: bool = False
    backup: bool = False  # keep the replaced file as <target>.bak


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]


Step = MakeDir | WriteFile | Run


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@dataclass(frozen=True)
class Host:
    """What provisioning needs from the machine, injectable for tests."""

    tagd: str  # the tagd executable the unit will start
    euid: int = field(default_factory=os.geteuid)
    which: Callable[[str], str | None] = shutil.which
    has_group: Callable[[str], bool] = group_exists
    systemd_dir: str = PACKAGE_SYSTEMD_DIR


@dataclass(frozen=True)
class Prepared:
    request: Request
    url: str
    name: str
    hardware_id: str
    ca_pem: bytes | None
    old_config: str | None
    new_config: str
    state_dir: str
    has_scanners: bool
    token_file: str  # the credential file the unit loads
    installs: tuple[tuple[str, bytes], ...]  # (target, content) of unit and udev files
    commands: tuple[tuple[str, ...], ...]
    enrol_settings: object  # ServerSettings for the enrolment request (the CA as given, not yet copied)


# ---- phase 1: prepare ------------------------------------------------------------------------------------------

def prepare(request: Request, host: Host) -> Prepared:
    root = request.root or "/"
    if request.root is None and host.euid != 0 and not request.dry_run:
        raise ProvisionError("provisioning writes to /etc and /var/lib: run it as root (sudo tagd provision ...), "
                             "or pass --root DIR to write under DIR")
    url = server_base_url(request.server, allow_insecure_http=False)
    ca_pem = _read_ca(request.ca) if request.ca else None
    old = _read_text(under(root, CONFIG_FILE))
    server = {"url": url, "token_file": "", "ca_file": CA_FILE if ca_pem else ""}
    new, settings = checked_update(old, server, CONFIG_FILE, CONFIG_TEMPLATE, "/var/lib/tagd")
    name = (request.name if request.name is not None else default_name(root)).strip()
    if not name or len(name) > 200:
        raise ProvisionError(f"--name must be 1 to 200 characters, got {request.name!r}")
    enrol_settings = replace(settings.server, ca_file=os.path.abspath(request.ca) if request.ca else "")
    installs = tuple(_installs(host))
    return Prepared(request, url, name, hardware_id(root), ca_pem, old, new, settings.state.dir,
                    bool(settings.scanners), _token_file(installs), installs, _commands(request, host),
                    enrol_settings)


def _read_ca(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            pem = file.read()
    except OSError as exc:
        raise ProvisionError(f"--ca {path}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ProvisionError(f"--ca {path}: not a PEM certificate bundle (no BEGIN CERTIFICATE line)")
    return pem


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def _installs(host: Host) -> list[tuple[str, bytes]]:
    """The packaged unit(s) and udev rules with the tagd executable filled in, and where each one goes."""
    source = Path(host.systemd_dir)
    files = sorted(source.glob("*.service")) + sorted(source.glob("*.rules"))
    return [(f"{UNIT_DIR if path.suffix == '.service' else UDEV_DIR}/{path.name}",
             path.read_text().replace(EXEC_PLACEHOLDER, host.tagd).encode()) for path in files]


def credential_source(unit_text: str) -> str | None:
    """The file a unit's `LoadCredential=tagd-token:PATH` loads, or None when it has no such line."""
    found = re.search(rf"^\s*LoadCredential\s*=\s*{bootstrap.TOKEN_CREDENTIAL}:(/\S+)\s*$", unit_text, re.MULTILINE)
    return found.group(1) if found else None


def _token_file(installs: Sequence[tuple[str, bytes]]) -> str:
    """Where the installed unit will look for the token: the token goes exactly there."""
    units = [content.decode() for target, content in installs if target.endswith(".service")]
    return next((path for path in map(credential_source, units) if path), TOKEN_FILE)


def installed_token_file(root: str = "/") -> str:
    """The token file the installed unit loads (what `tagd doctor` checks from a shell outside the service)."""
    unit = _read_text(under(root, f"{UNIT_DIR}/tagd.service")) if os.path.exists(under(root, UNIT_DIR)) else None
    return (credential_source(unit) if unit else None) or TOKEN_FILE


def _commands(request: Request, host: Host) -> tuple[tuple[str, ...], ...]:
    """Only on the live system, and only with the tools present (a container or a chroot may lack them): the
    'gpio' group the unit's SupplementaryGroups= needs (Debian has none; a missing group fails the start), then the
    reloads, and a trigger so that GPIO chips and LEDs present now get the rules' permissions without a reboot."""
    if request.root is not None:
        return ()
    wanted = [("groupadd", "-f", "--system", "gpio")] if not host.has_group("gpio") else []
    wanted += [("systemctl", "daemon-reload"), ("udevadm", "control", "--reload"),
               ("udevadm", "trigger", "--action=add", "--subsystem-match=gpio", "--subsystem-match=leds")]
    return tuple(command for command in wanted if host.which(command[0]))



def tagd_executable(argv0: str = sys.argv[0], python: str = sys.executable) -> str:
    """The absolute path of the `tagd` script this run came from (the venv's, not whatever PATH finds first)."""
    if os.path.basename(argv0) == "tagd" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    beside_python = os.path.join(os.path.dirname(os.path.abspath(python)), "tagd")  # python -m daemon.cli
    if os.path.isfile(beside_python):
        return beside_python
    raise ProvisionError("cannot find the tagd executable for the unit's ExecStart: run provision as `tagd` from "
                         "the virtualenv (e.g. /opt/tagd/.venv/bin/tagd provision ...)")


# ---- phase 2: enrol --------------------------------------------------------------------------------------------

def enrol(prepared: Prepared, make_client: Callable[[object], ServerClient] = ServerClient):
    with make_client(prepared.enrol_settings) as client:
        try:
            return client.enrol(prepared.request.code, prepared.hardware_id, prepared.name)
        except ServerError as exc:
            raise ProvisionError(f"enrolment failed, nothing written: {exc}\n  {_enrol_hint(exc)}") from None


def _enrol_hint(exc: ServerError) -> str:
    if isinstance(exc, Unreachable) and "TLS" in str(exc):
        return ("the server's certificate is not trusted: pass --ca with the CA bundle that signed it, "
                "and check that the URL's host name is the one in the certificate")
    if isinstance(exc, Unreachable):
        return "check the URL, the network (ping, DNS) and that the server is running"
    if isinstance(exc, Conflict) or exc.code in ("enrolment_code_used", "enrolment_code_expired"):
        return "ask the office for a new enrolment code (each code works once, and only until it expires)"
    if isinstance(exc, (RequestRejected, AuthRejected)):
        return "check the enrolment code (case and dashes do not matter), or ask for a new one"
    return "try again in a minute; if it persists, ask the server's administrator"


# ---- phase 3: plan and apply -------------------------------------------------------------------------------------

def plan(prepared: Prepared, token: str) -> list[Step]:
    """Every write and command, in order: the token first (it cannot be fetched again), the reloads last."""
    token_dir = os.path.dirname(prepared.token_file)
    own_dir = [MakeDir(token_dir, 0o700)] if token_dir != "/etc/tagd" else []
    steps: list[Step] = [MakeDir("/etc/tagd", 0o755), *own_dir,
                         WriteFile(prepared.token_file, token.encode() + b"\n", 0o600, "the device token",
                                   secret=True)]
    if prepared.ca_pem is not None:
        steps.append(WriteFile(CA_FILE, prepared.ca_pem, 0o644, "the server's CA bundle"))
    if prepared.new_config != prepared.old_config:
        what = "configuration (new)" if prepared.old_config is None else \
            "configuration ([server] url, ca_file, token_file updated; everything else kept)"
        steps.append(WriteFile(CONFIG_FILE, prepared.new_config.encode(), 0o644, what,
                               backup=prepared.old_config is not None))
    steps.append(MakeDir(prepared.state_dir, 0o750))
    for target, content in prepared.installs:
        steps += [MakeDir(os.path.dirname(target), 0o755),
                  WriteFile(target, content, 0o644, "systemd unit" if target.endswith(".service") else "udev rules")]
    return steps + [Run(argv) for argv in prepared.commands]


def describe(step: Step) -> str:
    if isinstance(step, MakeDir):
        return f"create directory {step.target} (mode {step.mode:04o}) if missing"
    if isinstance(step, WriteFile):
        size = "" if step.secret else f", {len(step.content)} bytes"
        backup = f"; the old one kept as {os.path.basename(step.target)}.bak" if step.backup else ""
        return f"write {step.target} (mode {step.mode:04o}{size}): {step.what}{backup}"
    return "run " + " ".join(step.argv)


def apply(steps: Sequence[Step], root: str, out: TextIO) -> None:
    for step in steps:
        if isinstance(step, MakeDir):
            path = under(root, step.target)
            if not os.path.isdir(path):
                os.makedirs(path, mode=step.mode, exist_ok=True)
                os.chmod(path, step.mode)  # makedirs' mode is filtered by the umask
        elif isinstance(step, WriteFile):
            _write(under(root, step.target), step)
        else:
            _run(step.argv, out)
        out.write(f"  done: {describe(step)}\n")


def _write(path: str, step: WriteFile) -> None:
    """Atomically: a temporary file with the final mode from the start (a token is never readable by others, not
    even for a moment), fsynced, renamed over the target, the directory fsynced."""
    from .sqlite_util import atomic_replace, fsync_file

    if step.backup and os.path.exists(path):
        _write(path + ".bak", WriteFile(step.target + ".bak", Path(path).read_bytes(), step.mode, "backup"))
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, step.mode)
    try:
        os.fchmod(fd, step.mode)  # O_CREAT's mode is filtered by the umask; an old tmp file keeps its mode
        os.write(fd, step.content)
    finally:
        os.close(fd)
    fsync_file(tmp)
    atomic_replace(tmp, path)


def _run(argv: tuple[str, ...], out: TextIO) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        out.write(f"  warning: {' '.join(argv)}: {exc}\n")
        return
    if result.returncode != 0:
        out.write(f"  warning: {' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[:300]}\n")


def under(root: str, target: str) -> str:
    return os.path.join(root, target.lstrip("/"))


# ---- the command -----------------------------------------------------------------------------------------------

def provision(request: Request, host: Host, out: TextIO,
              make_client: Callable[[object], ServerClient] = ServerClient) -> None:
    prepared = prepare(request, host)
    root = request.root or "/"
    where = f" under {os.path.abspath(root)}" if request.root else ""
    if request.dry_run:
        out.write(f"dry run: would enrol with {prepared.url} as {prepared.name!r} "
                  f"(hardware id {prepared.hardware_id}), then{where}:\n")
        out.writelines(f"  {describe(step)}\n" for step in plan(prepared, "<token>"))
        out.write("nothing was written and the enrolment code is still unused\n")
        return
    enrolment = enrol(prepared, make_client)
    out.write(f"enrolled as {prepared.name!r}: device {enrolment.device_id} at {enrolment.location_name} "
              f"({enrolment.business_name}); installing{where}:\n")
    apply(plan(prepared, enrolment.token), root, out)
    out.write(next_steps(prepared))


def next_steps(prepared: Prepared) -> str:
    lines = ["", "next steps:"]
    if not prepared.has_scanners:
        lines.append(f"  - add your scanner to {CONFIG_FILE}: `tagd devices` lists what is plugged in "
                     "(see docs/install-pi.md for the button and the lights)")
    if prepared.request.root is not None:
        lines.append(f"  - on the reader: systemctl enable --now tagd   (files were written under "
                     f"{prepared.request.root})")
    else:
        lines.append("  - systemctl enable --now tagd   (if it is already running: systemctl restart tagd, "
                     "so it loads the new token)")
    lines.append("  - tagd doctor   checks the configuration, the server, the clock, the devices and the service")
    return "\n".join(lines) + "\n"
