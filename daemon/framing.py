"""HID framing: decoded keystrokes → frames. Pure: time comes from the strokes and from the caller's `now`.

A scan ends at a terminator key (Enter, keypad Enter, Tab by default) or, when the scanner sends none, after a
silence of `timeout_s`. Timestamps are the events' own (CLOCK_REALTIME, the evdev default), so `now` passed to
`expire` must be wall-clock time too (time.time()).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scan import DROPPED, Dropped, Frame, KeyStroke, Reason

MAX_FRAME_CHARS = 256  # far above any barcode a client ID can come from; bounds memory against a stuck key


@dataclass
class _Partial:
    chars: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    overflowed: bool = False


class HidFramer:
    """Assembles the keystrokes of one device into frames. One instance per device, never shared."""

    def __init__(self, scanner: str, device: str, terminators: tuple[str, ...], timeout_s: float,
                 max_chars: int = MAX_FRAME_CHARS):
        self.scanner, self.device = scanner, device
        self.terminators = frozenset(terminators)
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self._partial = _Partial()

    @property
    def deadline(self) -> float | None:
        """When `expire` should next be called, or None when nothing is pending."""
        times = self._partial.times
        return times[-1] + self.timeout_s if times else None

    def feed(self, stroke: KeyStroke | Dropped | None) -> Frame | None:
        if stroke is None:
            return None
        if isinstance(stroke, Dropped) or stroke is DROPPED:
            self.reset()  # the kernel lost events: the half-read scan cannot be trusted
            return None
        if stroke.keysym in self.terminators:
            return self._finish(end=stroke.at)
        if not stroke.text:
            return None  # modifiers and other silent keys carry no part of the scan
        return self._append(stroke)

    def expire(self, now: float) -> Frame | None:
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        return self._finish(end=None)

    def reset(self) -> None:
        self._partial = _Partial()

    def _append(self, stroke: KeyStroke) -> Frame | None:
        partial = self._partial
        partial.times.append(stroke.at)
        if partial.overflowed:
            return None  # swallow the rest of an over-long frame until its end
        partial.chars.append(stroke.text)
        if len(partial.chars) <= self.max_chars:
            return None
        partial.overflowed = True
        frame = self._frame(partial, error=Reason.OVERFLOW)
        partial.chars = partial.chars[:16]  # keep a preview only; memory stays bounded
        return frame

    def _finish(self, end: float | None) -> Frame | None:
        partial, self._partial = self._partial, _Partial()
        if partial.overflowed or not partial.chars:
            return None  # an overflow was already reported; a stray terminator is not a scan
        times = partial.times + ([end] if end is not None else [])
        return self._frame(partial, times=times)

    def _frame(self, partial: _Partial, error: Reason | None = None, times: list[float] | None = None) -> Frame:
        times = times if times is not None else partial.times
        gaps = tuple((b - a) * 1000.0 for a, b in zip(times, times[1:]))
        text = "".join(partial.chars)
        if error is Reason.OVERFLOW:
            text = text[:16] + "…"
        return Frame(self.scanner, self.device, text, partial.times[0], gaps, error)
