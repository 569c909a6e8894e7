"""daemon.config: the TOML file becomes frozen Settings, and every bad value is named by file and key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from daemon import config
from daemon.config_feedback import parse_feedback
from daemon.config_fields import Field, render_fields, string
from daemon.errors import ConfigError
from daemon.settings import (CasePolicy, FramingRules, HidScannerSettings, LoggingSettings, ScanSettings,
                             SerialFraming, SerialScannerSettings, ServerSettings, Settings, StdinScannerSettings)

FILE = "/etc/tagd/tagd.toml"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "tagd.example.toml"
HID = '[[scanners]]\ntype = "hid"\ndevice = "/dev/input/event3"\n'
SERIAL = '[[scanners]]\ntype = "serial"\nport = "/dev/ttyUSB0"\n'
STDIN = '[[scanners]]\ntype = "stdin"\n'


def parse(text: str) -> Settings:
    return config.parse(tomllib.loads(text), FILE)


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value


BAD_VALUES = [
    ("[scan]\nmin_length = 0", 'scan.min_length: must be one of 1..4096, got 0'),
    ('[scan]\nmin_length = "4"', 'scan.min_length: must be one of 1..4096, got "4"'),
    ("[scan]\nmin_length = 4.0", 'scan.min_length: must be one of 1..4096, got 4.0'),
    ("[scan]\nmin_length = true", 'scan.min_length: must be one of 1..4096, got true'),
    ("[scan]\nmax_length = 4097", 'scan.max_length: must be one of 1..4096, got 4097'),
    ('[scan]\ncase = "shout"', 'scan.case: must be one of preserve, upper, lower, got "shout"'),
    ("[scan]\ncase = 1", 'scan.case: must be one of preserve, upper, lower, got 1'),
    ("[scan]\ndebounce_seconds = -1", 'scan.debounce_seconds: must be a number >= 0 and <= 3600, got -1'),
    ("[scan]\ndebounce_seconds = nan", 'scan.debounce_seconds: must be a number >= 0 and <= 3600, got nan'),
    ("[scan]\ndebounce_seconds = inf", 'scan.debounce_seconds: must be a number >= 0 and <= 3600, got inf'),
    ('[scan]\ndebounce_seconds = "3s"', 'scan.debounce_seconds: must be a number >= 0 and <= 3600, got "3s"'),
    ('[logging]\nlevel = "verbose"', 'logging.level: must be one of debug, info, warning, error, got "verbose"'),
    ('[logging]\nlevel = "INFO"', 'logging.level: must be one of debug, info, warning, error, got "INFO"'),
    ('[server]\nurl = "ftp://checkin.example.com"',
     'server.url: must be an http:// or https:// URL such as "https://checkin.example.com", '
     'got "ftp://checkin.example.com"'),
    ('[server]\nurl = "https://"',
     'server.url: must be an http:// or https:// URL such as "https://checkin.example.com", got "https://"'),
    ('[server]\nurl = "https://checkin example.com"',
     'server.url: must be an http:// or https:// URL such as "https://checkin.example.com", '
     'got "https://checkin example.com"'),
    ('[server]\ntoken_file = "token"',
     'server.token_file: must be an absolute path such as "/var/lib/tagd/token", got "token"'),
    ("[server]\nca_file = 1", 'server.ca_file: must be an absolute path such as "/etc/tagd/ca.pem", got 1'),
    ("[server]\nconnect_timeout_s = 0", "server.connect_timeout_s: must be a number > 0 and <= 300, got 0"),
    ("[server]\nread_timeout_s = 301", "server.read_timeout_s: must be a number > 0 and <= 300, got 301"),
    ("[server]\nmax_response_bytes = 100",
     "server.max_response_bytes: must be one of 1024..1073741824, got 100"),
    ('[server]\nallow_insecure_http = "yes"', 'server.allow_insecure_http: must be true or false, got "yes"'),
    ('[state]\ndir = "var/lib/tagd"', 'state.dir: must be an absolute path such as "/var/lib/tagd", got "var/lib/tagd"'),
    ('[checkin]\npolicy = "cloud"', 'checkin.policy: must be one of local, online, got "cloud"'),
    ("[checkin]\nonline_timeout_ms = 0", "checkin.online_timeout_ms: must be a number > 0 and <= 10000, got 0"),
    ('[checkin]\nunknown_offline = "maybe"', 'checkin.unknown_offline: must be one of deny, accept, got "maybe"'),
    ("[sync]\ninterval_s = 1", "sync.interval_s: must be a number >= 5 and <= 86400, got 1"),
    ("[sync]\njitter_s = -1", "sync.jitter_s: must be a number >= 0 and <= 86400, got -1"),
    ("[sync]\npage_size = 9000", "sync.page_size: must be one of 1..5000, got 9000"),
    ("[delivery]\nbatch_size = 0", "delivery.batch_size: must be one of 1..500, got 0"),
    ("[delivery]\nbackoff_initial_s = 0", "delivery.backoff_initial_s: must be a number > 0 and <= 3600, got 0"),
    ("[delivery]\nbackoff_max_s = true", "delivery.backoff_max_s: must be a number > 0 and <= 86400, got true"),
    ("[delivery]\nbackoff_initial_s = 60\nbackoff_max_s = 30",
     "delivery.backoff_initial_s: must be <= delivery.backoff_max_s"),
    ("[link]\ntimeout_s = 3600", "link.timeout_s: must be a number >= 5 and <= 600, got 3600"),
    ("[link]\nconfirm_s = 0", "link.confirm_s: must be a number >= 1 and <= 60, got 0"),
    ('[link]\nstaff_cards = ["STAFF-1"]',
     'link.staff_cards[0]: must be a card ID of letters and digits such as "STAFF01", got "STAFF-1"'),
    ('[link]\nstaff_cards = ["ST1"]', 'link.staff_cards[0]: "ST1" is 3 characters: scans of 4..32 only are read '
                                      '(scan.min_length, scan.max_length)'),
    ('[[scanners]]\ntype = "usb"', 'scanners[0].type: must be one of hid, serial, stdin, got "usb"'),
    ('[[scanners]]\nname = "door"', 'scanners[0].type: missing; must be one of hid, serial, stdin'),
    (STDIN + 'name = ""', 'scanners[0].name: must be a non-empty string, got ""'),
    (STDIN + "name = 7", 'scanners[0].name: must be a non-empty string, got 7'),
    (STDIN + "prefix = 1", 'scanners[0].prefix: must be a string, got 1'),
    (STDIN + "suffix = []", 'scanners[0].suffix: must be a string, got an array'),
    (STDIN + "strip_aim = 1", 'scanners[0].strip_aim: must be true or false, got 1'),
    (STDIN + 'strip_aim = "yes"', 'scanners[0].strip_aim: must be true or false, got "yes"'),
    ('[[scanners]]\ntype = "hid"\ndevice = "event3"',
     'scanners[0].device: must be an absolute path such as "/dev/input/by-id/usb-…-event-kbd", got "event3"'),
    ('[[scanners]]\ntype = "hid"\nvendor_product = "05e0-1200"',
     "scanners[0].vendor_product: must be 'hhhh:hhhh' (hex vendor:product), got \"05e0-1200\""),
    ('[[scanners]]\ntype = "hid"\nvendor_product = "5e0:1200"',
     "scanners[0].vendor_product: must be 'hhhh:hhhh' (hex vendor:product), got \"5e0:1200\""),
    ('[[scanners]]\ntype = "hid"\nname_pattern = 3', 'scanners[0].name_pattern: must be a string, got 3'),
    (HID + 'layout = ""', 'scanners[0].layout: must be a non-empty string, got ""'),
    (HID + "variant = false", 'scanners[0].variant: must be a string, got false'),
    (HID + 'grab = "no"', 'scanners[0].grab: must be true or false, got "no"'),
    (HID + 'terminators = "Return"', 'scanners[0].terminators: must be an array of strings, got "Return"'),
    (HID + 'terminators = ["Return", ""]',
     'scanners[0].terminators[1]: must be a keysym name such as "Return", got ""'),
    (HID + 'terminators = ["Return", "Enter key"]',
     'scanners[0].terminators[1]: must be a keysym name such as "Return", got "Enter key"'),
    (HID + "terminators = [13]", 'scanners[0].terminators[0]: must be a keysym name such as "Return", got 13'),
    (HID + "frame_timeout_ms = 0", 'scanners[0].frame_timeout_ms: must be a number > 0 and <= 10000, got 0'),
    (HID + "frame_timeout_ms = 20000.0",
     'scanners[0].frame_timeout_ms: must be a number > 0 and <= 10000, got 20000.0'),
    (HID + "typed_threshold_ms = -1", 'scanners[0].typed_threshold_ms: must be a number >= 0 and <= 1000, got -1'),
    (STDIN + SERIAL + 'baudrate = "fast"', 'scanners[1].baudrate: must be one of 1200..921600, got "fast"'),
    (SERIAL + "baudrate = 9600.0", 'scanners[0].baudrate: must be one of 1200..921600, got 9600.0'),
    (SERIAL + "baudrate = 300", 'scanners[0].baudrate: must be one of 1200..921600, got 300'),
    (SERIAL + "baudrate = 1_000_000", 'scanners[0].baudrate: must be one of 1200..921600, got 1000000'),
    (SERIAL + "bytesize = 9", 'scanners[0].bytesize: must be one of 5..8, got 9'),
    (SERIAL + 'parity = "X"', 'scanners[0].parity: must be one of N, E, O, M, S, got "X"'),
    (SERIAL + 'parity = "n"', 'scanners[0].parity: must be one of N, E, O, M, S, got "n"'),
    (SERIAL + "stopbits = 3", 'scanners[0].stopbits: must be one of 1, 1.5, 2, got 3'),
    (SERIAL + 'stopbits = "1"', 'scanners[0].stopbits: must be one of 1, 1.5, 2, got "1"'),
    (SERIAL + 'framing = "nul"',
     'scanners[0].framing: must be one of cr, lf, crlf, any_eol, stx_etx, timeout, got "nul"'),
    (SERIAL + 'encoding = "klingon"',
     'scanners[0].encoding: must be an ASCII-compatible text encoding such as "ascii", "utf-8" or "latin-1", '
     'got "klingon"'),
    (SERIAL + 'encoding = "hex"',
     'scanners[0].encoding: must be an ASCII-compatible text encoding such as "ascii", "utf-8" or "latin-1", '
     'got "hex"'),
    (SERIAL + 'encoding = "utf-16"',
     'scanners[0].encoding: must be an ASCII-compatible text encoding such as "ascii", "utf-8" or "latin-1", '
     'got "utf-16"'),
    (SERIAL + "reconnect_seconds = 0", 'scanners[0].reconnect_seconds: must be a number > 0 and <= 3600, got 0'),
    (SERIAL + "frame_timeout_ms = 1979-05-27",
     'scanners[0].frame_timeout_ms: must be a number > 0 and <= 10000, got 1979-05-27'),
    ('[[scanners]]\ntype = "serial"\nport = ""', 'scanners[0].port: must be a non-empty string, got ""'),
]


@pytest.mark.parametrize("text, message", BAD_VALUES, ids=[message.split(":")[0] for _, message in BAD_VALUES])
def test_bad_value_is_named_by_file_and_key(text, message):
    error = error_for(text)
    assert str(error) == f"tagd.toml: {message}"
    assert error.exit_status == 78


STRUCTURE_ERRORS = [
    ("[scan]\nmin_length = 40", "scan.min_length: must be <= scan.max_length (32), got 40"),
    ('[[scanners]]\ntype = "serial"', "scanners[0].port: missing; this key is required"),
    ('[[scanners]]\ntype = "hid"\nlayout = "de"',
     "scanners[0]: a hid scanner needs device, vendor_product or name_pattern to find it by"),
    ('[[scanners]]\ntype = "hid"\ndevice = ""',
     "scanners[0]: a hid scanner needs device, vendor_product or name_pattern to find it by"),
    (STDIN + 'name = "door"\n' + HID + 'name = "door"', 'scanners[1].name: "door" is already the name of scanners[0]'),
    (STDIN + 'name = "hid-1"\n' + HID, 'scanners[1].name: "hid-1" is already the name of scanners[0]'),
    ("scan = 3", "scan: must be a table, got 3"),
    ("logging = []", "logging: must be a table, got an array"),
    ("server = 1", "server: must be a table, got 1"),
    ('[server]\nurl = "http://checkin.example.com"',
     "server.url: plain http:// to a host other than this one sends the device token in clear; use https://, "
     "or set server.allow_insecure_http = true"),
    ('[scanners]\ntype = "hid"', "scanners: must be an array of tables ([[scanners]]), got a table"),
    ("scanners = [1]", "scanners[0]: must be a table, got 1"),
]


@pytest.mark.parametrize("text, message", STRUCTURE_ERRORS, ids=[m.split(":")[0] for _, m in STRUCTURE_ERRORS])
def test_inconsistent_settings_are_refused_with_the_key_to_fix(text, message):
    error = error_for(text)
    assert str(error) == f"tagd.toml: {message}"
    assert error.exit_status == 78


UNKNOWN_KEYS = [
    ("sacn = {}", "sacn: unknown key; did you mean 'scan'?"),
    ("database = 1", "database: unknown key; expected one of scan, logging, server, state, checkin, sync, delivery, link, scanners, button, outputs, patterns"),
    ("[server]\nread_timeout = 5", "server.read_timeout: unknown key; did you mean 'read_timeout_s'?"),
    ("[scan]\nmin_lenght = 4", "scan.min_lenght: unknown key; did you mean 'min_length'?"),
    ("[logging]\nlevl = 'info'", "logging.levl: unknown key; did you mean 'level'?"),
    (SERIAL + "baudrat = 9600", "scanners[0].baudrat: unknown key; did you mean 'baudrate'?"),
    (STDIN + "colour = 1", "scanners[0].colour: unknown key; expected one of type, name, prefix, suffix, strip_aim"),
    (HID + "baudrate = 9600", "scanners[0].baudrate: unknown key for a hid scanner (serial scanners only)"),
    (SERIAL + "typed_threshold_ms = 40", "scanners[0].typed_threshold_ms: unknown key for a serial scanner "
                                         "(hid scanners only)"),
    (STDIN + "frame_timeout_ms = 5", "scanners[0].frame_timeout_ms: unknown key for a stdin scanner "
                                     "(hid and serial scanners only)"),
    ('[scan]\n"odd key" = 1', 'scan."odd key": unknown key; expected one of min_length, max_length, case, '
                              'debounce_seconds'),
]


@pytest.mark.parametrize("text, message", UNKNOWN_KEYS, ids=[m.split(":")[0] for _, m in UNKNOWN_KEYS])
def test_unknown_key_is_an_error_with_a_suggestion(text, message):
    error = error_for(text)
    assert str(error) == f"tagd.toml: {message}"
    assert error.exit_status == 78


def test_error_carries_file_key_and_problem_separately():
    error = error_for(STDIN + SERIAL + 'baudrate = "fast"')
    assert (error.file, error.key, error.problem) == ("tagd.toml", "scanners[1].baudrate",
                                                      'must be one of 1200..921600, got "fast"')


def test_empty_file_gives_the_defaults_with_its_source():
    assert parse("") == Settings(source=FILE)


def test_values_are_converted_to_settings_types():
    settings = parse('[scan]\ncase = "upper"\ndebounce_seconds = 2\n' + HID + 'vendor_product = "05E0:12AB"\n'
                     "terminators = []\ntyped_threshold_ms = 0\n" + SERIAL + 'stopbits = 1.5\nframing = "stx_etx"')
    hid, serial = settings.scanners
    assert settings.scan == ScanSettings(case=CasePolicy.UPPER, debounce_seconds=2.0)
    assert isinstance(settings.scan.debounce_seconds, float)
    assert hid == HidScannerSettings(name="hid-0", device="/dev/input/event3", vendor_product="05e0:12ab",
                                     terminators=(), rules=FramingRules(typed_threshold_ms=None))
    assert serial == SerialScannerSettings(name="serial-1", port="/dev/ttyUSB0", stopbits=1.5,
                                           framing=SerialFraming.STX_ETX)


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:8080/api", "http://[::1]:8080"])
def test_plain_http_to_this_host_needs_no_opt_in(url):
    assert parse(f'[server]\nurl = "{url}"').server == ServerSettings(url=url)


def test_plain_http_elsewhere_is_allowed_when_opted_in():
    settings = parse('[server]\nurl = "http://10.0.0.5"\nallow_insecure_http = true')
    assert settings.server == ServerSettings(url="http://10.0.0.5", allow_insecure_http=True)


def test_rules_sit_flat_in_the_scanner_table_and_keep_the_type_defaults():
    hid, stdin = parse(HID + 'prefix = "*"\n' + STDIN + 'suffix = "#"\nstrip_aim = false').scanners
    assert hid.rules == FramingRules(prefix="*", typed_threshold_ms=40.0)
    assert stdin.rules == FramingRules(suffix="#", strip_aim=False)


def test_unnamed_scanners_are_named_by_type_and_index():
    names = [s.name for s in parse(STDIN + HID + 'name = "door"\n' + SERIAL).scanners]
    assert names == ["stdin-0", "door", "serial-2"]


# ---- finding and reading the file -------------------------------------------------------------------------------

def test_cli_path_wins_over_environment():
    assert config.resolve_path("/tmp/cli.toml", {"TAGD_CONFIG": "/tmp/env.toml"}) == ("/tmp/cli.toml", True)


def test_environment_wins_over_default():
    assert config.resolve_path(None, {"TAGD_CONFIG": "/tmp/env.toml"}) == ("/tmp/env.toml", True)


def test_default_path_when_nothing_is_named():
    assert config.resolve_path(None, {}) == ("/etc/tagd/tagd.toml", False)
    assert config.resolve_path(None, {"TAGD_CONFIG": ""}) == ("/etc/tagd/tagd.toml", False)


def test_missing_explicit_file_is_an_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        config.load(str(missing), explicit=True)
    assert str(caught.value) == f"{missing}: no such file"
    assert caught.value.exit_status == 78


def test_missing_default_file_means_defaults(tmp_path):
    assert config.load(str(tmp_path / "tagd.toml"), explicit=False) == Settings()


def test_file_is_read_and_recorded_as_source(tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_text('[logging]\nlevel = "debug"\n' + STDIN)
    settings = config.load(str(path), explicit=False)
    assert settings == Settings(source=str(path), logging=LoggingSettings("debug"),
                                scanners=(StdinScannerSettings(name="stdin-0"),))


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_text("[scan]\nmin_length = \n")
    with pytest.raises(ConfigError) as caught:
        config.load(str(path), explicit=True)
    assert str(caught.value) == "tagd.toml: line 2, column 14: invalid TOML: Invalid value"
    assert caught.value.exit_status == 78


def test_syntax_error_at_end_of_file(tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_text("[scan")
    with pytest.raises(ConfigError) as caught:
        config.load(str(path), explicit=True)
    assert str(caught.value) == ("tagd.toml: end of document: invalid TOML: "
                                 "Expected ']' at the end of a table declaration")


def test_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_bytes(b'[scan]\ncase = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(str(path), explicit=True)
    assert str(caught.value) == "tagd.toml: line 2: not valid UTF-8 text"


def test_byte_order_mark_from_a_windows_editor_is_accepted(tmp_path):
    path = tmp_path / "tagd.toml"
    path.write_bytes(b'\xef\xbb\xbf[logging]\r\nlevel = "error"\r\n')
    assert config.load(str(path), explicit=True).logging == LoggingSettings("error")


def test_default_path_that_exists_but_cannot_be_read_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config.load(str(tmp_path), explicit=False)  # a directory: present, but not a file
    assert str(caught.value) == f"{tmp_path}: cannot read: Is a directory"


def test_validation_errors_from_a_file_use_its_basename(tmp_path):
    path = tmp_path / "reader.toml"
    path.write_text('[scan]\ncase = "shout"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(str(path), explicit=True)
    assert str(caught.value) == 'reader.toml: scan.case: must be one of preserve, upper, lower, got "shout"'


# ---- the example file and render ----------------------------------------------------------------------------------

EXAMPLE_SCANNERS = (
    HidScannerSettings(name="front-door",
                       device="/dev/input/by-id/usb-Honeywell_Imaging_Metrology_Hand_Held_Scanner-event-kbd"),
    SerialScannerSettings(name="side-door", port="/dev/serial/by-id/usb-Datalogic_Gryphon_GD4500-if00"),
    StdinScannerSettings(name="terminal"),
)


def test_example_file_parses_to_the_defaults_and_its_devices():
    settings = config.load(str(EXAMPLE), explicit=True)
    feedback = parse_feedback(tomllib.loads(EXAMPLE.read_text()), "tagd.example.toml")
    assert settings == Settings(source=str(EXAMPLE), scanners=EXAMPLE_SCANNERS, **feedback)
    assert feedback["button"].kind == "evdev" and feedback["outputs"]  # the example shows one of each


def test_example_file_spells_out_every_key():
    data = tomllib.loads(EXAMPLE.read_text())
    assert list(data["scan"]) == [field.key for field in config.SCAN_FIELDS]
    assert list(data["logging"]) == [field.key for field in config.LOGGING_FIELDS]
    assert list(data["server"]) == [field.key for field in config.SERVER_FIELDS]
    for key, (_, fields) in config.SECTIONS.items():
        assert list(data[key]) == [field.key for field in fields]
    assert [list(table) for table in data["scanners"]] == [
        [field.key for field in config.SCANNER_FIELDS[table["type"]]] for table in data["scanners"]]
    assert {table["type"] for table in data["scanners"]} == set(config.SCANNER_FIELDS)
    assert set(data) >= {"button", "outputs", "patterns"}


ODD_TEXT = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f é ✓ 🙂'
ROUND_TRIPS = {
    "defaults": Settings(source=FILE),
    "example": Settings(source=FILE, scanners=EXAMPLE_SCANNERS),
    "everything changed": Settings(
        source=FILE,
        scan=ScanSettings(min_length=1, max_length=4096, case=CasePolicy.LOWER, debounce_seconds=0.1),
        logging=LoggingSettings("warning"),
        server=ServerSettings(url="https://checkin.example.com:8443/tagd", token_file="/var/lib/tagd/token",
                              ca_file="/etc/tagd/ca.pem", connect_timeout_s=1.5, read_timeout_s=300.0,
                              max_response_bytes=1024, allow_insecure_http=True),
        scanners=(
            HidScannerSettings(name=ODD_TEXT, vendor_product="05e0:1200", name_pattern="*Scan[ne]r*", layout="de",
                               variant="nodeadkeys", grab=False, terminators=(), frame_timeout_ms=1e-3,
                               rules=FramingRules(prefix=ODD_TEXT, suffix="\x03", strip_aim=False,
                                                  typed_threshold_ms=None)),
            SerialScannerSettings(name="s", port="/dev/pts/7", baudrate=921600, bytesize=7, parity="E",
                                  stopbits=1.5, framing=SerialFraming.TIMEOUT, frame_timeout_ms=10_000.0,
                                  encoding="latin-1", reconnect_seconds=0.25,
                                  rules=FramingRules(prefix="\x02", typed_threshold_ms=None)),
            StdinScannerSettings(name="t", rules=FramingRules(suffix="!")),
        )),
}


@pytest.mark.parametrize("settings", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_render_reads_back_as_the_same_settings(settings):
    assert config.parse(tomllib.loads(config.render(settings)), FILE) == settings


def test_render_of_the_example_file_reads_back_the_same():
    settings = config.load(str(EXAMPLE), explicit=True)
    assert config.parse(tomllib.loads(config.render(settings)), str(EXAMPLE)) == settings


def test_render_spells_out_typed_check_off_as_zero():
    text = config.render(Settings(scanners=(HidScannerSettings(name="h", device="/d", rules=FramingRules()),)))
    assert "\ntyped_threshold_ms = 0\n" in text


def test_secret_field_renders_hidden():
    @dataclasses.dataclass(frozen=True)
    class Server:
        url: str = "https://example.org"
        token: str = "s3cr3t"

    fields = (Field("url", string()), Field("token", string(), secret=True))
    assert render_fields(Server(), fields) == ['url = "https://example.org"', 'token = "<hidden>"']

