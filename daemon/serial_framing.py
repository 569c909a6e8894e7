"""Cut a serial scanner's byte stream into frames. Pure: no I/O, no clock reads; the caller passes the time in.

How each framing ends a frame:

- CR, LF, CRLF: at that terminator. In CRLF mode a lone CR is ordinary frame content.
- ANY_EOL: at CR or LF. A CRLF ends the frame at the CR; the LF then ends an empty frame, and empty frames are
  dropped, so CRLF gives exactly one frame however the two bytes are split across reads.
- STX_ETX: a frame is the bytes between 0x02 and 0x03. Bytes outside such a pair are discarded.
- TIMEOUT: after ``timeout_s`` of silence.

Silence also ends a frame in the terminator modes (choice documented here, relied on by `expire`):

- CR/LF/CRLF/ANY_EOL: a partial frame left without terminator is emitted as an ordinary frame, so a scanner whose
  suffix is switched off still works. Validation downstream judges the text as usual.
- STX_ETX: a frame that began with STX but never got its ETX was cut off (a lost byte, an unplugged cable); it is
  emitted with ``error=Reason.MISSING_SUFFIX`` so it is recorded and shown, never mistaken for a whole code. A new
  STX inside an open frame does the same to the unfinished frame before starting over.

Bounded memory: once a frame grows past ``max_bytes`` one OVERFLOW frame (with a short preview) is emitted and further
bytes are discarded until the frame ends (terminator or silence); the buffer never holds more than ``max_bytes``.
"""

from __future__ import annotations

import codecs

from daemon.errors import ConfigError
from daemon.scan import Frame, Reason
from daemon.settings import SerialFraming

CR, LF, STX, ETX = 0x0D, 0x0A, 0x02, 0x03
PREVIEW_BYTES = 32  # how much of an overflowing frame is kept to show what it was


class SerialFramer:
    """Turns bytes (with their arrival time) into `Frame` values for one serial scanner."""

    def __init__(
        self,
        scanner: str,
        device: str,
        framing: SerialFraming,
        timeout_s: float,
        encoding: str = "ascii",
        max_bytes: int = 1024,
    ):
        self.framing = _checked_framing(scanner, framing)
        _check_arguments(scanner, timeout_s, encoding, max_bytes)
        self.scanner, self.device = scanner, device
        self.timeout_s, self.encoding, self.max_bytes = timeout_s, encoding, max_bytes
        self._buffer = bytearray()
        self._started_at: float | None = None  # arrival of the open frame's first byte; None: no frame open
        self._last_byte_at = 0.0
        self._previous = -1  # the byte before this one: a CRLF may be split across reads
        self._discarding = False  # the open frame overflowed: swallow bytes until it ends

    @property
    def deadline(self) -> float | None:
        """When `expire` should next be called, or None while no frame is open."""
        if self._started_at is None:
            return None
        return self._last_byte_at + self.timeout_s

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """Take bytes that arrived at `now`; return the frames they complete (oldest first)."""
        frames = self.expire(now)  # a frame whose silence ran out before these bytes came is over
        if data:
            self._last_byte_at = now
        for byte in data:
            frame = self._take(byte, now)
            if frame is not None:
                frames.append(frame)
        return frames

    def expire(self, now: float) -> list[Frame]:
        """Close the open frame if `timeout_s` of silence has passed by `now`."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return []
        error = Reason.MISSING_SUFFIX if self.framing is SerialFraming.STX_ETX else None
        return _listed(self._finish(error))

    def reset(self) -> None:
        """The port was lost: forget the open frame without emitting it."""
        self._close_frame()
        self._previous = -1

    def _take(self, byte: int, now: float) -> Frame | None:
        previous, self._previous = self._previous, byte
        mode = self.framing
        if mode is SerialFraming.STX_ETX:
            return self._take_enveloped(byte, now)
        if mode is SerialFraming.TIMEOUT:
            return self._add(byte, now)
        if mode is SerialFraming.CRLF and byte == LF and previous == CR:
            return self._finish(None)
        if byte in _TERMINATORS[mode]:
            return self._finish(None)
        return self._add(byte, now)

    def _take_enveloped(self, byte: int, now: float) -> Frame | None:
        if byte == STX:
            cut_off = self._finish(Reason.MISSING_SUFFIX)
            self._started_at = now
            return cut_off
        if self._started_at is None:
            return None  # line noise between frames
        if byte == ETX:
            return self._finish(None)
        return self._add(byte, now)

    def _add(self, byte: int, now: float) -> Frame | None:
        if self._started_at is None:
            self._started_at = now
        if self._discarding:
            return None
        self._buffer.append(byte)
        if len(self._buffer) <= self.max_bytes:
            return None
        preview = bytes(self._buffer[:PREVIEW_BYTES]).decode(self.encoding, "backslashreplace")
        frame = self._frame(f"{preview}...", Reason.OVERFLOW, self._started_at)
        self._buffer.clear()
        self._discarding = True
        return frame

    def _finish(self, error: Reason | None) -> Frame | None:
        """End the open frame; return it unless it is empty or was already reported as an overflow."""
        raw = bytes(self._buffer)
        if self.framing is SerialFraming.CRLF and raw.endswith(b"\r"):
            raw = raw[:-1]  # the CR of the CRLF that ended it (or half of one cut by silence)
        discarded, started_at = self._discarding, self._started_at
        self._close_frame()
        if discarded or not raw or started_at is None:
            return None
        try:
            return self._frame(raw.decode(self.encoding), error, started_at)
        except UnicodeDecodeError:
            return self._frame(raw.decode(self.encoding, "backslashreplace"), Reason.NOT_TEXT, started_at)

    def _frame(self, text: str, error: Reason | None, at: float) -> Frame:
        return Frame(self.scanner, self.device, text, at=at, error=error.value if error else None)

    def _close_frame(self) -> None:
        self._buffer.clear()
        self._started_at = None
        self._discarding = False


_TERMINATORS: dict[SerialFraming, frozenset[int]] = {
    SerialFraming.CR: frozenset({CR}),
    SerialFraming.LF: frozenset({LF}),
    SerialFraming.CRLF: frozenset(),  # handled as a pair in SerialFramer._take
    SerialFraming.ANY_EOL: frozenset({CR, LF}),
}


def _listed(frame: Frame | None) -> list[Frame]:
    return [] if frame is None else [frame]


def _checked_framing(scanner: str, framing: str) -> SerialFraming:
    try:
        return SerialFraming(framing)
    except ValueError:
        raise ConfigError("<settings>", f"scanners.{scanner}.framing", f"unknown framing {framing!r}") from None


def _check_arguments(scanner: str, timeout_s: float, encoding: str, max_bytes: int) -> None:
    """Reject settings the framer cannot honour, naming the scanner's key."""
    key = f"scanners.{scanner}"
    if not timeout_s > 0:
        raise ConfigError("<settings>", f"{key}.frame_timeout_ms", "must be greater than 0")
    if max_bytes < 1:
        raise ConfigError("<settings>", key, f"max_bytes must be at least 1, not {max_bytes}")
    try:
        codecs.lookup(encoding)
        ascii_compatible = "\r\n\x02\x03A".encode(encoding) == b"\r\n\x02\x03A"
    except (LookupError, UnicodeError):
        ascii_compatible = False
    if not ascii_compatible:
        # terminators are matched as single bytes, which only works when the encoding writes them as ASCII does
        raise ConfigError("<settings>", f"{key}.encoding", f"{encoding!r} is not a known ASCII-compatible encoding")
