"""Who this machine is, for enrolment: a stable hardware id and a default device name. Read from files under a root
directory, so `tagd provision --root DIR` (image building, tests) reads the target's files, not the build host's.

The hardware id prefers the Raspberry Pi's board serial (it survives re-flashing the SD card); elsewhere it is
derived from /etc/machine-id. systemd asks that the machine id itself never leave the machine, so only an
application-specific HMAC of it is sent (the idea of sd_id128_get_machine_app_specific).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket

from .errors import TagdError

APP_KEY = b"tagd hardware id"
_PI_SERIAL = re.compile(r"^Serial\s*:\s*([0-9a-fA-F]{8,16})\s*$", re.MULTILINE)


class HostIdError(TagdError):
    """Neither a board serial nor a machine id could be found."""


def hardware_id(root: str = "/") -> str:
    """'pi-serial:<hex>' on a Raspberry Pi, else 'machine:<32 hex>' from /etc/machine-id."""
    serial = pi_serial(root)
    if serial:
        return f"pi-serial:{serial}"
    machine = machine_id(root)
    if machine:
        return "machine:" + hmac.new(bytes.fromhex(machine), APP_KEY, hashlib.sha256).hexdigest()[:32]
    raise HostIdError(f"no hardware id: {_under(root, '/etc/machine-id')} is missing or empty and this is not a "
                      "Raspberry Pi with a serial number (run `systemd-machine-id-setup` once, then try again)")


def pi_serial(root: str = "/") -> str | None:
    """The board serial from /proc/cpuinfo or the device tree; None when absent or all zeros (unset)."""
    cpuinfo = _read(root, "/proc/cpuinfo")
    found = _PI_SERIAL.search(cpuinfo)
    serial = found.group(1) if found else _read(root, "/sys/firmware/devicetree/base/serial-number").strip("\x00\n ")
    serial = serial.lower()
    return serial if re.fullmatch(r"[0-9a-f]{8,16}", serial) and serial.strip("0") else None


def machine_id(root: str = "/") -> str | None:
    text = _read(root, "/etc/machine-id").strip().lower()
    return text if re.fullmatch(r"[0-9a-f]{32}", text) and text.strip("0") else None


def default_name(root: str = "/") -> str:
    """The device name the server shows when --name is not given: the (target's) host name."""
    if os.path.abspath(root) == "/":
        return socket.gethostname()
    return _read(root, "/etc/hostname").strip() or "tagd reader"


def _read(root: str, path: str) -> str:
    try:
        with open(_under(root, path), encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def _under(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))
