"""GPIO lines through libgpiod v2's Python bindings (`gpiod` on PyPI), imported only when a line is configured,
so tagd runs without them on readers that use no GPIO line directly (the gpio-key / gpio-led overlays need none).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from daemon.errors import DeviceError

CONSUMER = "tagd"


def import_gpiod() -> ModuleType:
    try:
        gpiod = importlib.import_module("gpiod")
    except ImportError:
        raise DeviceError("GPIO lines need libgpiod's Python bindings v2: pip install gpiod") from None
    if not hasattr(gpiod, "request_lines"):
        raise DeviceError(f"gpiod {getattr(gpiod, '__version__', '?')} is the v1 API; tagd needs gpiod >= 2")
    return gpiod


def request_input(chip: str, line: int, active_low: bool, bias: str) -> Any:
    """A LineRequest for one input line reporting both edges, timestamped on CLOCK_MONOTONIC (the clock of
    asyncio's loop.time(), so edge times and the loop's timers agree)."""
    gpiod = import_gpiod()
    from gpiod.line import Bias, Clock, Direction, Edge

    bias_value = {"as-is": Bias.AS_IS, "disabled": Bias.DISABLED, "pull-up": Bias.PULL_UP,
                  "pull-down": Bias.PULL_DOWN}[bias]
    settings = gpiod.LineSettings(direction=Direction.INPUT, edge_detection=Edge.BOTH, bias=bias_value,
                                  active_low=active_low, event_clock=Clock.MONOTONIC)
    return _request(gpiod, chip, line, settings)


def request_output(chip: str, line: int, active_low: bool) -> Any:
    """A LineRequest for one output line, starting inactive."""
    gpiod = import_gpiod()
    from gpiod.line import Direction, Value

    settings = gpiod.LineSettings(direction=Direction.OUTPUT, active_low=active_low, output_value=Value.INACTIVE)
    return _request(gpiod, chip, line, settings)


def _request(gpiod: ModuleType, chip: str, line: int, settings: Any) -> Any:
    try:
        return gpiod.request_lines(chip, config={line: settings}, consumer=CONSUMER)
    except (OSError, ValueError) as exc:  # ValueError: no such line offset on the chip
        raise DeviceError(f"cannot request GPIO line {line} on {chip}: {getattr(exc, 'strerror', None) or exc}") \
            from None
