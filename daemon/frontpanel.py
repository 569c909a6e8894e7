"""The reader's front panel: the staff button, the lights and beeper, and link mode behind them.

Built once per configuration by the Reader. The button's gestures drive link mode; scans are offered to link mode
first (`take`) so that, while it is on, none of them is checked in.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import TextIO

from .gestures import Gesture
from .linking import LinkCoordinator
from .linkmode import LinkMode
from .patterns import Signal
from .player import Player
from .scan import ScanResult
from .settings import Settings
from .signals import SignalFeedback, pattern_table
from .workers import WorkerThread

log = logging.getLogger("tagd.panel")

LINK_DRAIN_S = 1.0  # at shutdown, how long a link request in flight may still finish and reach the roster


class FrontPanel:
    """`text` shows decisions and signals as lines (log or terminal) unless a terminal output is configured."""

    def __init__(self, settings: Settings, roster, connectivity, make_client: Callable[[], object] | None,
                 after_link: Callable[[str], None], on_status: Callable[[str, str, str], None],
                 post: Callable[[Callable[[], None]], None] = lambda action: action(),
                 text=None, stream: TextIO = sys.stdout, button_factory=None):
        from drivers.button import open_button
        from drivers.outputs import open_outputs

        self.post = post  # gestures join the scans' queue, so a press acts after the scans that came before it
        outputs, terminal = open_outputs(settings.outputs, stream, on_error=_output_failed)
        self.feedback = SignalFeedback(Player(outputs, pattern_table(settings.patterns)), terminal or text)
        self.link_thread = WorkerThread("tagd-link") if make_client else None
        self.link = None if make_client is None else LinkCoordinator(
            LinkMode(settings.link), make_client(), self.link_thread, roster, self.feedback, connectivity, after_link)
        loop = asyncio.get_running_loop()
        factory = button_factory or open_button
        self.button = factory(settings.button, self.gesture, on_status, scheduler=loop)

    def gesture(self, gesture: Gesture) -> None:
        self.post(lambda: self._act_on(gesture))

    def link_command(self) -> None:
        """`tagd link`: link mode on, as a press would."""
        self.post(lambda: self._act_on(None))

    async def _act_on(self, gesture: Gesture | None) -> None:
        if self.link is None:
            log.warning("staff button pressed, but link mode needs a server and none is configured")
            self.feedback.signal(Signal.ERROR)
            return
        await self.settle()  # like a scan, a press acts on the answer to what came before it
        if gesture is None:
            self.link.command()
        elif gesture is Gesture.LONG_PRESS:
            self.link.long_press()
        else:
            self.link.press()

    async def settle(self) -> None:
        """Wait while link mode waits for the server (its link target, a link, the roster write after it).

        The desk calls this before each scan: a tag scanned right after the button press is then linked rather
        than refused as too early, and the first scan of a tag just linked is a check-in, not a duplicate."""
        if self.link is not None:
            await self.link.drain()

    def take(self, scan: ScanResult) -> bool:
        """True when link mode took the scan (link mode is on, or it is a staff card)."""
        return self.link is not None and self.link.take(scan)

    async def run(self) -> None:
        if self.button is not None:
            await self.button.run()

    async def close(self) -> None:
        if self.button is not None:
            self.button.close()
        if self.link is not None:
            try:
                await asyncio.wait_for(self.link.drain(), LINK_DRAIN_S)
            except asyncio.TimeoutError:
                log.warning("a link request was still with the server at shutdown; it is not known whether it "
                            "was made (the server's answer to a retry will tell)")
            self.link.close()
            self.link_thread.shutdown(timeout=LINK_DRAIN_S)
        self.feedback.close()


def _output_failed(output, error) -> None:
    log.error("feedback output %s left out: %s", output.name, error)
