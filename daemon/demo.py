"""`tagd demo`: the whole reader on one machine with no hardware and no configuration.

Starts the reference server embedded on loopback with a demo business, enrols this reader with it, and runs the
very same Reader that `tagd run` runs, with the terminal as the scanner: type an ID and Enter.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from dataclasses import replace

from .bootstrap import build_scanner, make_reader, sync_roster_now
from .service import serve
from .settings import ButtonSettings, ServerSettings, Settings, StateSettings, StdinScannerSettings, SyncSettings


def prepare(data_dir: str) -> tuple[Settings, dict, object]:
    """Server with the demo business, this reader enrolled: returns (settings, seed, server handle)."""
    from server.demo import seed_demo
    from server.embedded import start_server

    from .api_client import ServerClient

    seed = seed_demo(os.path.join(data_dir, "server.db"))
    server = start_server(os.path.join(data_dir, "server.db"))
    server_settings = ServerSettings(url=server.url, token_file=os.path.join(data_dir, "token"))
    with ServerClient(server_settings) as client:
        enrolment = client.enrol(seed["enrolment_code"]["code"], f"demo-{socket.gethostname()}", "demo reader")
    fd = os.open(server_settings.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(enrolment.token + "\n")
    settings = Settings(source="<demo>", scanners=(StdinScannerSettings(name="terminal"),), server=server_settings,
                        button=ButtonSettings(kind="fake"),
                        state=StateSettings(dir=os.path.join(data_dir, "state")),
                        sync=replace(SyncSettings(), jitter_s=0.0, interval_s=30.0))
    sync_roster_now(settings)  # the first scans should find the members already known
    return settings, seed, server


def banner(seed: dict, data_dir: str) -> str:
    active = [c["client_id"] for c in seed["clients"] if c["status"] == "active"][:6]
    return (f"tagd demo · reference server and reader running, data in {data_dir}\n"
            f"Type a client ID and Enter. Try {', '.join(active)} (members), {seed['inactive_client_id']} "
            f"(inactive), ZZZZ9 (unknown), the same ID twice, or 'a-b'.\n"
            f"Link mode: '{STAFF_PRESS}' presses the staff button, then scan the member's ID and the new tag, and "
            f"'{STAFF_PRESS}' again to confirm replacing their ID ('{STAFF_HOLD}' holds the button: cancel).\n"
            "Ctrl-D or Ctrl-C ends the demo.\n")


STAFF_PRESS, STAFF_HOLD = "!", "!!"  # not client IDs (those are alphanumeric), so they cannot collide with a scan


class DemoTerminal:
    """The demo's terminal: each line is a scan, except '!' (a short press of the staff button) and '!!' (a long
    press, which cancels link mode). End of input (Ctrl-D) ends the demo."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.button = None

    def scanner(self, settings, sink, on_status):
        def lines(frame) -> None:
            if frame.text.strip() == STAFF_PRESS and self.button is not None:
                self.button.press()
            elif frame.text.strip() == STAFF_HOLD and self.button is not None:
                self.button.hold(self.button_settings.long_press_s)
            else:
                sink(frame)

        return _EndsDemo(build_scanner(settings, lines, on_status), self.stop)

    def make_button(self, settings, on_gesture, on_status=None, *, scheduler=None):
        from drivers.button import FakeButton

        self.button_settings = settings
        self.button = FakeButton(settings, on_gesture, scheduler)
        return self.button


class _EndsDemo:
    def __init__(self, inner, stop: asyncio.Event):
        self.inner, self.stop, self.name = inner, stop, inner.name

    async def run(self) -> None:
        await self.inner.run()
        self.stop.set()

    def close(self) -> None:
        self.inner.close()


def run_demo(data_dir: str | None = None) -> int:
    data_dir = data_dir or tempfile.mkdtemp(prefix="tagd-demo-")
    os.makedirs(data_dir, exist_ok=True)
    settings, seed, server = prepare(data_dir)
    sys.stdout.write(banner(seed, data_dir))
    try:
        asyncio.run(_serve(settings))
    finally:
        server.stop()
    return 0


async def _serve(settings: Settings) -> None:
    from drivers.outputs import TerminalOutput

    terminal, feedback = DemoTerminal(), TerminalOutput(sys.stdout)
    await serve(settings, lambda s: make_reader(s, feedback, terminal.scanner, button_factory=terminal.make_button),
                lambda: settings, terminal.stop)
