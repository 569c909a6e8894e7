"""`tagd doctor`: is this reader ready? One line per check (pass, warn, fail or skip), a fix for each failure,
exit status 1 when anything failed. The checks live in doctor_checks and doctor_devices; this module wires them to
the real machine (or to what a test injects through `Machine`) and prints the report.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO

from .doctor_checks import (Check, Runner, check_clock, check_config, check_outbox, check_server, check_sqlite,
                            check_state_dir, check_token, check_token_accepted, check_unit, run_command, skipped,
                            systemd_booted, token_location)
from .doctor_devices import LEDS_DIR, check_button, check_outputs, check_scanners, open_serial_port
from .provision import installed_token_file
from .settings import Settings
from .status import daemon_alive, read_status

EX_OK, EX_FAILED = 0, 1


def _client(settings, token):
    from .api_client import ServerClient

    return ServerClient(settings, token)


def _input_backend():
    from drivers.evdev_backend import EvdevBackend

    return EvdevBackend()


@dataclass(frozen=True)
class Machine:
    """Everything the doctor looks at beyond the configuration file: the real machine by default."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    credential_file: str = field(default_factory=installed_token_file)
    now: Callable[[], float] = time.time
    make_client: Callable = _client  # (ServerSettings, token) -> ServerClient
    input_backend: Callable = _input_backend
    open_serial: Callable = open_serial_port
    leds_dir: str = LEDS_DIR
    which: Callable[[str], str | None] = shutil.which
    run: Runner = run_command
    systemd_booted: Callable[[], bool] = systemd_booted


def diagnose(cli_path: str | None, machine: Machine | None = None) -> list[Check]:
    machine = machine or Machine()
    config_check, settings = check_config(cli_path, machine.environ)
    if settings is None:
        return [config_check, skipped("everything else", "needs a valid configuration"),
                check_unit(machine.which, machine.run, booted=machine.systemd_booted)]
    return [config_check, *_server_checks(settings, machine), *_device_checks(settings, machine),
            *_local_checks(settings, machine)]


def _server_checks(settings: Settings, machine: Machine) -> list[Check]:
    token_check, token = check_token(settings, token_location(settings, machine.environ, machine.credential_file))
    if not settings.server.url:
        return [token_check]
    with machine.make_client(settings.server, token) as client:
        server_check, health = check_server(client)
        if health is None:
            return [token_check, server_check, skipped("token accepted", "server unreachable"),
                    skipped("clock", "server unreachable")]
        accepted = check_token_accepted(client) if token else skipped("token accepted", "no token")
        clock = check_clock(health, datetime.fromtimestamp(machine.now(), timezone.utc))
    return [token_check, server_check, accepted, clock]


def _device_checks(settings: Settings, machine: Machine) -> list[Check]:
    runtime = read_status(settings.state.dir)
    running = daemon_alive(runtime)
    states = (runtime or {}).get("scanners", {}) if running else {}

    def attached(name: str) -> str | None:
        state = states.get(name) or {}
        return (state.get("detail") or "attached") if state.get("state") == "attached" else None

    backend = machine.input_backend()
    return [*check_scanners(settings.scanners, backend, attached, machine.open_serial),
            check_button(settings.button, backend, attached=running),
            *check_outputs(settings.outputs, machine.leds_dir)]


def _local_checks(settings: Settings, machine: Machine) -> list[Check]:
    return [check_state_dir(settings.state.dir), check_sqlite(), check_outbox(settings.state.dir, machine.now()),
            check_unit(machine.which, machine.run, booted=machine.systemd_booted)]


def exit_status(checks: list[Check]) -> int:
    return EX_FAILED if any(check.ok is False for check in checks) else EX_OK


def format_report(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{check.status.upper():4}  {check.name:16} {check.detail}")
        if check.hint and check.status in ("fail", "warn"):
            lines.append(f"{'':22}fix: {check.hint}")
    failures = sum(check.ok is False for check in checks)
    warnings = sum(check.status == "warn" for check in checks)
    verdict = f"{failures} check(s) failed" if failures else "all checks passed"
    lines.append(f"\n{verdict}" + (f", {warnings} warning(s)" if warnings else ""))
    return "\n".join(lines) + "\n"


def report(checks: list[Check], out: TextIO, as_json: bool) -> int:
    if as_json:
        json.dump({"ok": exit_status(checks) == EX_OK, "checks": [check.to_json() for check in checks]}, out,
                  indent=2)
        out.write("\n")
    else:
        out.write(format_report(checks))
    return exit_status(checks)
