"""Typed settings. Built once at start-up by daemon.config from the TOML file; immutable afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CasePolicy(StrEnum):
    PRESERVE = "preserve"
    UPPER = "upper"
    LOWER = "lower"


class SerialFraming(StrEnum):
    CR = "cr"
    LF = "lf"
    CRLF = "crlf"
    ANY_EOL = "any_eol"  # CR, LF or CRLF, whichever the scanner sends
    STX_ETX = "stx_etx"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ScanSettings:
    """Rules for every scan, whichever scanner it came from."""

    min_length: int = 4
    max_length: int = 32
    case: CasePolicy = CasePolicy.PRESERVE
    debounce_seconds: float = 3.0


@dataclass(frozen=True)
class FramingRules:
    """Per-scanner clean-up applied to a frame before validation."""

    prefix: str = ""
    suffix: str = ""
    strip_aim: bool = True  # remove an AIM symbology identifier (']C0', ']A0', ...) at the start
    typed_threshold_ms: float | None = None  # HID only: median gap above this means a person typed it


@dataclass(frozen=True)
class HidScannerSettings:
    name: str
    device: str = ""  # /dev/input/by-id/... or /dev/input/eventN
    vendor_product: str = ""  # 'abcd:1234' (hex)
    name_pattern: str = ""  # fnmatch pattern on the device name
    layout: str = "us"
    variant: str = ""
    grab: bool = True
    terminators: tuple[str, ...] = ("Return", "KP_Enter", "Tab")
    frame_timeout_ms: float = 500.0  # silence that ends a frame sent without terminator (or abandons a partial one)
    rules: FramingRules = field(default_factory=lambda: FramingRules(typed_threshold_ms=40.0))
    kind: str = "hid"


@dataclass(frozen=True)
class SerialScannerSettings:
    name: str
    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # N, E, O, M, S
    stopbits: float = 1
    framing: SerialFraming = SerialFraming.ANY_EOL
    frame_timeout_ms: float = 100.0
    encoding: str = "ascii"
    reconnect_seconds: float = 1.0
    rules: FramingRules = field(default_factory=FramingRules)
    kind: str = "serial"


@dataclass(frozen=True)
class StdinScannerSettings:
    name: str = "terminal"
    rules: FramingRules = field(default_factory=FramingRules)
    kind: str = "stdin"


ScannerSettings = HidScannerSettings | SerialScannerSettings | StdinScannerSettings


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"


@dataclass(frozen=True)
class ServerSettings:
    """Where and how tagd talks to the central server. The device token is not a setting: it lives in token_file."""

    url: str = ""  # base URL, e.g. 'https://checkin.example.com'; '' means no server (standalone reader)
    token_file: str = ""  # credential file holding the device token written at enrolment
    ca_file: str = ""  # PEM bundle of a private CA; '' means the system trust store
    connect_timeout_s: float = 3.05  # slightly above a multiple of 3 s, the TCP retransmission window
    read_timeout_s: float = 10.0  # per socket read, and the whole body must arrive within it too
    max_response_bytes: int = 8 * 1024 * 1024  # a reply body larger than this is cut off and rejected
    allow_insecure_http: bool = False  # plain http:// to a non-loopback host (never needed in production)


class DecisionPolicy(StrEnum):
    LOCAL = "local"  # the roster decides at once; delivery runs in the background
    ONLINE = "online"  # refresh the roster from the server first (short timeout), then decide; roster on failure


class UnknownWhileOffline(StrEnum):
    DENY = "deny"
    ACCEPT = "accept"


@dataclass(frozen=True)
class StateSettings:
    dir: str = "/var/lib/tagd"  # roster.db, outbox.db, status.json


@dataclass(frozen=True)
class CheckinSettings:
    policy: DecisionPolicy = DecisionPolicy.LOCAL
    online_timeout_ms: float = 400.0  # the whole online round trip; past it the roster decides (offline)
    unknown_offline: UnknownWhileOffline = UnknownWhileOffline.DENY


@dataclass(frozen=True)
class SyncSettings:
    interval_s: float = 300.0  # roster delta poll period
    jitter_s: float = 60.0  # random extra delay, so a fleet rebooting together does not hit the server at once
    page_size: int = 1000


@dataclass(frozen=True)
class DeliverySettings:
    batch_size: int = 100
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0


@dataclass(frozen=True)
class LinkSettings:
    """Link mode: staff link a new key tag to a client at the reader (daemon.linkmode)."""

    timeout_s: float = 60.0  # link mode ends this long after its last step: a reader is never left in link mode
    confirm_s: float = 10.0  # how long a press may confirm replacing a client's existing ID
    staff_cards: tuple[str, ...] = ()  # IDs of cards that switch link mode on and off (compared case-insensitively)


@dataclass(frozen=True)
class ButtonSettings:
    """The staff button. kind 'none': no button; 'evdev': a key of an input device (the Pi's gpio-key overlay, a
    USB button or keypad); 'gpiod': a GPIO input line; 'fake': drivers.button.FakeButton (demos, tests)."""

    kind: str = "none"
    device: str = ""  # evdev: /dev/input/by-id/... or /dev/input/by-path/... or /dev/input/eventN
    vendor_product: str = ""  # evdev: 'abcd:1234' (hex)
    name_pattern: str = ""  # evdev: fnmatch pattern on the device name
    key: str = "KEY_PROG1"  # evdev: the key code name the button sends
    grab: bool = True  # evdev
    chip: str = "/dev/gpiochip0"  # gpiod
    line: int = 0  # gpiod: line offset on the chip
    active_low: bool = True  # gpiod: a button to ground with a pull-up reads low when pressed
    bias: str = "pull-up"  # gpiod: as-is, disabled, pull-up, pull-down
    debounce_ms: float = 0.0  # software debounce of raw edges (gpiod lines bounce; gpio-key is kernel-debounced)
    long_press_s: float = 2.0


@dataclass(frozen=True)
class OutputSettings:
    """One feedback output. kind 'led': /sys/class/leds/NAME (or `path`); 'gpiod': a GPIO output line;
    'beeper': an EV_SND input device node (`path`); 'terminal': coloured lines on standard output."""

    kind: str
    name: str
    role: str = ""  # the column of the pattern table it plays: 'green', 'red', 'buzzer', or a role of your own
    path: str = ""  # led: the LED's directory (default /sys/class/leds/<name>); beeper: the device node
    chip: str = "/dev/gpiochip0"  # gpiod
    line: int = 0  # gpiod
    active_low: bool = False  # gpiod


@dataclass(frozen=True)
class PatternOverride:
    """`[patterns.<signal>] <role> = "<steps>"`: replaces one cell of the default pattern table."""

    signal: str
    role: str
    steps: str  # canonical text form (daemon.patterns.format_pattern), "" for nothing


@dataclass(frozen=True)
class Settings:
    source: str = "<defaults>"  # the file these settings came from (for messages)
    scan: ScanSettings = field(default_factory=ScanSettings)
    scanners: tuple[ScannerSettings, ...] = ()
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    state: StateSettings = field(default_factory=StateSettings)
    checkin: CheckinSettings = field(default_factory=CheckinSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    link: LinkSettings = field(default_factory=LinkSettings)
    button: ButtonSettings = field(default_factory=ButtonSettings)
    outputs: tuple[OutputSettings, ...] = ()
    patterns: tuple[PatternOverride, ...] = ()
