"""The device checks of `tagd doctor`: each configured scanner, the staff button and the feedback outputs.

Scanners and the button are probed the way the daemon would find them (the same matching rules), opened and
grabbed for a moment and released. While the daemon runs it holds them itself, so a device the running daemon
reports attached (status.json) passes without being touched. Outputs are only looked at, never driven: a doctor
must not flash the reader's lights at whoever stands in front of it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable

from drivers.button import ButtonCriteria
from drivers.evdev_backend import InputBackend, InputDeviceLike, by_id_links, identity_of
from drivers.matching import Criteria, DeviceIdentity

from .doctor_checks import Check, failed, passed, skipped
from .errors import ConfigError
from .settings import (ButtonSettings, HidScannerSettings, OutputSettings, ScannerSettings, SerialScannerSettings)

LEDS_DIR = "/sys/class/leds"
INPUT_GROUP_HINT = "add tagd's user to group 'input' (the packaged udev rules do this for scanners)"


def check_scanners(scanners: Iterable[ScannerSettings], backend: InputBackend,
                   attached: Callable[[str], str | None], open_serial: Callable[[SerialScannerSettings], None],
                   ) -> list[Check]:
    """One check per configured scanner. `attached(name)` is what the running daemon reports for it, or None."""
    checks = []
    for scanner in scanners:
        name = f"scanner {scanner.name}"
        held = attached(scanner.name)
        if held is not None:
            checks.append(passed(name, f"attached to the running tagd: {held}"))
        elif isinstance(scanner, HidScannerSettings):
            checks.append(check_hid(name, scanner, backend))
        elif isinstance(scanner, SerialScannerSettings):
            checks.append(check_serial(name, scanner, open_serial))
        else:
            checks.append(skipped(name, "reads the terminal: nothing to check"))
    return checks or [failed("scanners", "no scanner configured",
                             "add a [[scanners]] table to the configuration; `tagd devices` lists what is plugged in")]


def check_hid(name: str, scanner: HidScannerSettings, backend: InputBackend) -> Check:
    criteria = Criteria.from_settings(scanner)
    found, unreadable = _find(backend, criteria.matches, criteria.device)
    if found is None:
        wanted = ", ".join(f"{key} {value!r}" for key, value in (("device", scanner.device),
                           ("vendor_product", scanner.vendor_product), ("name_pattern", scanner.name_pattern))
                           if value) or "anything that looks like a scanner"
        hint = INPUT_GROUP_HINT if unreadable else "plug it in (a USB scanner in keyboard mode); `tagd devices` " \
                                                   "lists input devices and their by-id paths"
        return failed(name, f"no input device matches {wanted}" + (f" ({unreadable})" if unreadable else ""), hint)
    identity, device = found
    try:
        problem = _grab_problem(device) if scanner.grab else None
    finally:
        device.close()
    if problem:
        return failed(name, f"{identity.path} ({identity.name}): {problem}",
                      "stop the program holding it (a second tagd? a desktop session?)")
    grab = ", readable and grabbable" if scanner.grab else ", readable (grab = false)"
    return passed(name, f"{identity.path} ({identity.name}){grab}")


def check_serial(name: str, scanner: SerialScannerSettings, open_serial: Callable[[SerialScannerSettings], None],
                 ) -> Check:
    try:
        open_serial(scanner)
    except ConfigError as exc:
        return failed(name, str(exc), "fix the scanner's line settings in the configuration")
    except OSError as exc:
        from drivers.serial import describe_open_error

        hint = ("add tagd's user to the port's group (dialout)" if exc.errno in (errno.EACCES, errno.EPERM) else
                "plug it in; `tagd devices` lists serial ports and their /dev/serial/by-id paths")
        return failed(name, describe_open_error(scanner.port, exc), hint)
    return passed(name, f"{scanner.port} opens")


def open_serial_port(scanner: SerialScannerSettings) -> None:
    """Open the port exclusively, as the daemon does, and close it again. OSError when that fails."""
    import serial

    try:
        port = serial.Serial(None, scanner.baudrate, scanner.bytesize, scanner.parity, scanner.stopbits, timeout=0,
                             exclusive=True)
    except ValueError as exc:
        raise ConfigError("<settings>", f"scanners.{scanner.name}", str(exc)) from None
    port.port = scanner.port
    try:
        port.open()
    except serial.SerialException as exc:
        raise (exc.__context__ if isinstance(exc.__context__, OSError)
               else OSError(getattr(exc, "errno", None) or errno.EIO, str(exc))) from None
    port.close()


def check_button(button: ButtonSettings, backend: InputBackend, attached: bool) -> Check:
    if button.kind in ("none", "fake"):
        return skipped("button", f"button type {button.kind!r}: nothing to check")
    if button.kind == "gpiod":
        return _check_node("button", button.chip, f"GPIO chip {button.chip} line {button.line}",
                           "enable the GPIO chip; add tagd's user to group 'gpio'")
    if attached:
        return passed("button", "held by the running tagd")
    try:
        criteria = ButtonCriteria.from_settings(button)
    except ConfigError as exc:
        return failed("button", str(exc), "fix button.key in the configuration")
    found, unreadable = _find(backend, criteria.matches, button.device)
    if found is None:
        return failed("button", "no input device matches the [button] settings" +
                      (f" ({unreadable})" if unreadable else ""),
                      INPUT_GROUP_HINT if unreadable else "on a Pi: the gpio-key overlay line in "
                      "/boot/firmware/config.txt, then reboot (docs/install-pi.md)")
    identity, device = found
    device.close()
    return passed("button", f"{identity.path} ({identity.name})")


def check_outputs(outputs: Iterable[OutputSettings], leds_dir: str = LEDS_DIR) -> list[Check]:
    checks = []
    for output in outputs:
        name = f"output {output.name or output.kind}"
        if output.kind == "led":
            path = output.path or os.path.join(leds_dir, output.name)
            checks.append(_check_node(name, os.path.join(path, "brightness"), f"LED {path}",
                                      "on a Pi: the gpio-led overlay line in /boot/firmware/config.txt, then "
                                      "reboot; the LED's name must match label= (docs/install-pi.md)"))
        elif output.kind == "gpiod":
            checks.append(_check_node(name, output.chip, f"GPIO chip {output.chip} line {output.line}",
                                      "add tagd's user to group 'gpio'"))
        elif output.kind == "beeper":
            checks.append(_check_node(name, output.path, f"beeper {output.path}",
                                      "the pwm-beeper/gpio-beeper overlay; add tagd's user to group 'input'"))
        else:
            checks.append(skipped(name, "the terminal: nothing to check"))
    return checks


def _check_node(name: str, path: str, what: str, hint: str) -> Check:
    if not os.path.exists(path):
        return failed(name, f"{what}: {path} does not exist", hint)
    if not os.access(path, os.R_OK | os.W_OK):
        return failed(name, f"{what}: no read/write access to {path}", hint)
    return passed(name, f"{what} present")


def _find(backend: InputBackend, matches: Callable[[DeviceIdentity], bool], configured: str,
          ) -> tuple[tuple[DeviceIdentity, InputDeviceLike] | None, str]:
    """The first input device `matches`, opened; else (None, a note on unreadable nodes that might be it)."""
    unreadable = []
    for path in backend.list_event_paths():
        try:
            device = backend.open(path)
        except OSError as exc:
            mine = not configured or os.path.realpath(configured) == os.path.realpath(path)
            if exc.errno in (errno.EACCES, errno.EPERM) and mine:
                unreadable.append(path)
            continue
        identity = identity_of(device, by_id_links(backend.input_dir, path))
        if matches(identity):
            return (identity, device), ""
        device.close()
    return None, f"no read access to {', '.join(unreadable)}" if unreadable else ""


def _grab_problem(device: InputDeviceLike) -> str | None:
    try:
        device.grab()
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return "grabbed by another program"
        return exc.strerror or str(exc)
    try:
        device.ungrab()
    except OSError:
        pass  # closing releases the grab anyway
    return None
