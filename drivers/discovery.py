"""`tagd devices`: the input devices a scanner entry could use, and whether tagd may read and grab them.

Listed: every event node that reports key events (EV_KEY), plus every node that cannot be opened at all, since
then its capabilities are unknown and the permission problem is exactly what the person needs to see.
`looks_like_scanner` is the heuristic documented in drivers.matching (keyboard-like AND a scanner name, by-id
link or vendor). `can_grab` is tested by grabbing and releasing at once; a device tagd itself holds shows up as
"grabbed by another program", which is true from where `tagd devices` stands.
"""

from __future__ import annotations

import errno

from .evdev_backend import EvdevBackend, InputBackend, InputDeviceLike, by_id_links, identity_of
from .matching import DeviceIdentity, looks_like_scanner

NO_ACCESS = "no read access: add the user to group 'input'"
BUSY = "grabbed by another program"


def list_input_devices(backend: InputBackend | None = None) -> list[dict]:
    """One dict per device: path, by_id, vendor_product, name, phys, looks_like_scanner, can_open, can_grab,
    problem (None when tagd can open and grab it)."""
    backend = backend or EvdevBackend()
    rows = (_describe(backend, path) for path in backend.list_event_paths())
    return [row for row in rows if row is not None]


def _describe(backend: InputBackend, path: str) -> dict | None:
    by_id = by_id_links(backend.input_dir, path)
    try:
        device = backend.open(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENODEV):
            return None  # unplugged while we listed
        return _row(path, by_id, None, can_open=False, can_grab=False, problem=_problem(exc))
    try:
        identity = identity_of(device, by_id)
        if not identity.keys:
            return None
        problem = _grab_problem(device)
        return _row(path, by_id, identity, can_open=True, can_grab=problem is None, problem=problem)
    finally:
        device.close()


def _grab_problem(device: InputDeviceLike) -> str | None:
    try:
        device.grab()
    except OSError as exc:
        return _problem(exc)
    try:
        device.ungrab()
    except OSError:
        pass  # the close that follows releases the grab anyway
    return None


def _problem(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return NO_ACCESS
    if exc.errno == errno.EBUSY:
        return BUSY
    return exc.strerror or str(exc)


def _row(path: str, by_id: tuple[str, ...], identity: DeviceIdentity | None, *, can_open: bool, can_grab: bool,
         problem: str | None) -> dict:
    return {
        "path": path,
        "by_id": _preferred_link(by_id),
        "vendor_product": identity.vendor_product if identity else None,
        "name": identity.name if identity else None,
        "phys": identity.phys if identity else None,
        "looks_like_scanner": looks_like_scanner(identity) if identity else False,
        "can_open": can_open,
        "can_grab": can_grab,
        "problem": problem,
    }


def _preferred_link(links: tuple[str, ...]) -> str | None:
    """The link to put in a config file: the keyboard interface ('-event-kbd') if udev made one."""
    keyboard = [link for link in links if link.endswith("-event-kbd")]
    return (keyboard or list(links) or [None])[0]
