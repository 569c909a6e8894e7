"""Configuration: one TOML file in, one frozen `daemon.settings.Settings` out, validated once at start-up.

Every problem is a ConfigError that names the file (its basename) and the key, e.g.
`tagd.toml: scanners[1].baudrate: must be one of 1200..921600, got "fast"`. Key paths use dotted tables and
0-based array indexes, the way TOML arrays count: `scanners[1]` is the second [[scanners]] table.

The schema lives in the Field tables below; parsing and `render` both read them, so whatever can be set can be
printed back, and `parse(tomllib.loads(render(s)), s.source) == s`. The keys are documented, with their defaults,
in config/tagd.example.toml.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .config_feedback import FEEDBACK_KEYS, parse_feedback, render_feedback
from .config_link import LINK_FIELDS
from .config_fields import (Field, array_of_tables, boolean, checked, describe, float_range, http_url, int_range, key_path,
                            matching, off_when_zero, one_of, reject_unknown, render_fields, str_list, string,
                            text_encoding, walk)
from .errors import ConfigError
from .hosts import is_loopback_host
from .settings import (CasePolicy, CheckinSettings, DecisionPolicy, DeliverySettings, FramingRules,
                       HidScannerSettings, LinkSettings, LoggingSettings, ScannerSettings, ScanSettings, SerialFraming,
                       SerialScannerSettings, ServerSettings, Settings, StateSettings, StdinScannerSettings,
                       SyncSettings, UnknownWhileOffline)

DEFAULT_PATH = "/etc/tagd/tagd.toml"
ENV_VAR = "TAGD_CONFIG"

SCAN_FIELDS = (
    Field("min_length", int_range(1, 4096)),
    Field("max_length", int_range(1, 4096)),
    Field("case", one_of(*CasePolicy)),
    Field("debounce_seconds", float_range(0, 3600)),  # 0: no debounce
)

LOGGING_FIELDS = (Field("level", one_of("debug", "info", "warning", "error")),)

ABSOLUTE_PATH = r"|/.+"  # or empty: not set
SERVER_FIELDS = (
    Field("url", http_url()),  # '': no server, a standalone reader
    Field("token_file", matching(ABSOLUTE_PATH, 'an absolute path such as "/var/lib/tagd/token"')),
    Field("ca_file", matching(ABSOLUTE_PATH, 'an absolute path such as "/etc/tagd/ca.pem"')),
    Field("connect_timeout_s", float_range(0, 300, above=True)),
    Field("read_timeout_s", float_range(0, 300, above=True)),
    Field("max_response_bytes", int_range(1024, 1 << 30)),
    Field("allow_insecure_http", boolean()),
)

STATE_FIELDS = (Field("dir", matching(r"/.+", 'an absolute path such as "/var/lib/tagd"')),)
CHECKIN_FIELDS = (
    Field("policy", one_of(*DecisionPolicy)),
    Field("online_timeout_ms", float_range(0, 10_000, above=True)),
    Field("unknown_offline", one_of(*UnknownWhileOffline)),
)
SYNC_FIELDS = (
    Field("interval_s", float_range(5, 86_400)),
    Field("jitter_s", float_range(0, 86_400)),
    Field("page_size", int_range(1, 5000)),
)
DELIVERY_FIELDS = (
    Field("batch_size", int_range(1, 500)),
    Field("backoff_initial_s", float_range(0, 3600, above=True)),
    Field("backoff_max_s", float_range(0, 86_400, above=True)),
)
SECTIONS = {  # table name -> (settings attribute type, fields), in the order `render` prints them
    "state": (StateSettings, STATE_FIELDS),
    "checkin": (CheckinSettings, CHECKIN_FIELDS),
    "sync": (SyncSettings, SYNC_FIELDS),
    "delivery": (DeliverySettings, DELIVERY_FIELDS),
    "link": (LinkSettings, LINK_FIELDS),
}

FRAME_TIMEOUT = Field("frame_timeout_ms", float_range(0, 10_000, above=True))
RULE_FIELDS = (
    Field("prefix", string(), "rules.prefix"),
    Field("suffix", string(), "rules.suffix"),
    Field("strip_aim", boolean(), "rules.strip_aim"),
)
TYPED_THRESHOLD = Field("typed_threshold_ms", off_when_zero(float_range(0, 1000)), "rules.typed_threshold_ms",
                        to_toml=lambda ms: 0 if ms is None else ms)


def _common(kind: str) -> tuple[Field, ...]:
    # `type` is read before the table is walked (it picks these fields); here it only maps back to `.kind`.
    return Field("type", one_of(kind), "kind"), Field("name", string(non_empty=True))


SCANNER_FIELDS: dict[str, tuple[Field, ...]] = {
    "hid": (
        *_common("hid"),
        Field("device", matching(ABSOLUTE_PATH, 'an absolute path such as "/dev/input/by-id/usb-…-event-kbd"')),
        Field("vendor_product", matching(r"|[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", "'hhhh:hhhh' (hex vendor:product)",
                                         str.lower)),
        Field("name_pattern", string()),
        Field("layout", string(non_empty=True)),  # whether XKB knows it is the key decoder's business
        Field("variant", string()),
        Field("grab", boolean()),
        Field("terminators", str_list(matching(r"[A-Za-z0-9_]+", 'a keysym name such as "Return"'))),
        FRAME_TIMEOUT,
        *RULE_FIELDS,
        TYPED_THRESHOLD,
    ),
    "serial": (
        *_common("serial"),
        Field("port", string(non_empty=True), required=True),
        Field("baudrate", int_range(1200, 921_600)),
        Field("bytesize", int_range(5, 8)),
        Field("parity", one_of("N", "E", "O", "M", "S")),
        Field("stopbits", one_of(1, 1.5, 2)),
        Field("framing", one_of(*SerialFraming)),
        FRAME_TIMEOUT,
        Field("encoding", text_encoding()),
        Field("reconnect_seconds", float_range(0, 3600, above=True)),
        *RULE_FIELDS,
    ),
    "stdin": (*_common("stdin"), *RULE_FIELDS),
}
SCANNER_TYPES = {"hid": HidScannerSettings, "serial": SerialScannerSettings, "stdin": StdinScannerSettings}


# ---- finding and reading the file ------------------------------------------------------------------------------

def resolve_path(cli_path: str | None, environ: Mapping[str, str]) -> tuple[str, bool]:
    """Which file to read: --config, else $TAGD_CONFIG (empty counts as unset), else DEFAULT_PATH.

    The bool says whether the path was named explicitly; only then is a missing file an error.
    """
    if cli_path is not None:
        return cli_path, True
    if environ.get(ENV_VAR):
        return environ[ENV_VAR], True
    return DEFAULT_PATH, False


def load(path: str, explicit: bool) -> Settings:
    """Read and validate `path`. A missing default file means the embedded defaults (no scanners configured).

    Errors about the file itself (missing, unreadable) name the full path; errors about its content the basename.
    """
    try:
        with open(path, "rb") as file:
            data = _read_toml(file.read(), os.path.basename(path) or path)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(path, "", "no such file") from None
        return Settings()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror or exc}") from None
    return parse(data, path)


def _read_toml(content: bytes, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(content.decode("utf-8-sig"))  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise ConfigError(name, f"line {line}", "not valid UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(name, exc) from None


def _syntax_error(name: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """tomllib says 'Invalid value (at line 2, column 14)': move the position to where our messages put keys."""
    match = re.fullmatch(r"(.*) \(at (.+)\)", str(exc), re.DOTALL)
    problem, where = match.groups() if match else (str(exc), "")
    return ConfigError(name, where, f"invalid TOML: {problem}")


# ---- validating --------------------------------------------------------------------------------------------------

def parse(data: Mapping[str, Any], file: str) -> Settings:
    """Validate a parsed TOML document. `file` is recorded as Settings.source; messages use its basename."""
    name = os.path.basename(file) or file
    reject_unknown(data, ("scan", "logging", "server", *SECTIONS, "scanners", *FEEDBACK_KEYS), "", name)
    scan = ScanSettings(**walk(_table(data, "scan", name), SCAN_FIELDS, "scan", name))
    if scan.min_length > scan.max_length:
        raise ConfigError(name, "scan.min_length",
                          f"must be <= scan.max_length ({scan.max_length}), got {scan.min_length}")
    logging = LoggingSettings(**walk(_table(data, "logging", name), LOGGING_FIELDS, "logging", name))
    server = _server(_table(data, "server", name), name)
    sections = {key: cls(**walk(_table(data, key, name), fields, key, name))
                for key, (cls, fields) in SECTIONS.items()}
    if sections["delivery"].backoff_initial_s > sections["delivery"].backoff_max_s:
        raise ConfigError(name, "delivery.backoff_initial_s", "must be <= delivery.backoff_max_s")
    _check_staff_cards(sections["link"].staff_cards, scan, name)
    return Settings(source=file, scan=scan, scanners=_scanners(data.get("scanners", []), name), logging=logging,
                    server=server, **sections, **parse_feedback(data, name))


def _check_staff_cards(cards: tuple[str, ...], scan: ScanSettings, name: str) -> None:
    """A staff card is scanned like any tag: one the scan rules refuse would never open link mode."""
    for index, card in enumerate(cards):
        if not scan.min_length <= len(card) <= scan.max_length:
            raise ConfigError(name, f"link.staff_cards[{index}]",
                              f"{describe(card)} is {len(card)} characters: scans of "
                              f"{scan.min_length}..{scan.max_length} only are read (scan.min_length, scan.max_length)")


def _table(data: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(name, key, f"must be a table, got {describe(table)}")
    return table


def _server(table: Mapping[str, Any], name: str) -> ServerSettings:
    server = ServerSettings(**walk(table, SERVER_FIELDS, "server", name))
    url = urlsplit(server.url)
    if url.scheme == "http" and not is_loopback_host(url.hostname or "") and not server.allow_insecure_http:
        raise ConfigError(name, "server.url", "plain http:// to a host other than this one sends the device token "
                                              "in clear; use https://, or set server.allow_insecure_http = true")
    return server


def _scanners(tables: Any, name: str) -> tuple[ScannerSettings, ...]:
    return array_of_tables(tables, "scanners", name, lambda table, path, index: _scanner(table, path, index, name))


def _scanner(table: Any, path: str, index: int, name: str) -> ScannerSettings:
    if not isinstance(table, dict):
        raise ConfigError(name, path, f"must be a table, got {describe(table)}")
    if "type" not in table:
        raise ConfigError(name, key_path(path, "type"), f"missing; must be one of {', '.join(SCANNER_FIELDS)}")
    kind = checked(one_of(*SCANNER_FIELDS), table["type"], key_path(path, "type"), name)
    values = walk(table, SCANNER_FIELDS[kind], path, name, note=lambda key: _belongs_elsewhere(key, kind))
    values.setdefault("name", f"{kind}-{index}")
    scanner = _build(SCANNER_TYPES[kind], values)
    if isinstance(scanner, HidScannerSettings) and not (scanner.device or scanner.vendor_product
                                                        or scanner.name_pattern):
        raise ConfigError(name, path, "a hid scanner needs device, vendor_product or name_pattern to find it by")
    return scanner


def _belongs_elsewhere(key: str, kind: str) -> str | None:
    """'baudrate' in a hid scanner is not a typo but a key of another type: say so."""
    owners = [other for other, fields in SCANNER_FIELDS.items()
              if other != kind and key in {field.key for field in fields}]
    return f"unknown key for a {kind} scanner ({' and '.join(owners)} scanners only)" if owners else None


def _build(cls: type, values: dict[str, Any]) -> Any:
    """The settings object from {target: value}; 'rules.*' targets replace fields of the type's default rules."""
    rules = {target.removeprefix("rules."): value for target, value in values.items() if target.startswith("rules.")}
    own = {target: value for target, value in values.items() if not target.startswith("rules.")}
    return cls(**own, rules=dataclasses.replace(_default_rules(cls), **rules))


def _default_rules(cls: type) -> FramingRules:
    rules_field = next(field for field in dataclasses.fields(cls) if field.name == "rules")
    return rules_field.default_factory()


# ---- printing ----------------------------------------------------------------------------------------------------

def render(settings: Settings) -> str:
    """The effective settings as TOML, every key spelled out; reading it back gives the same settings."""
    lines = ["[scan]", *render_fields(settings.scan, SCAN_FIELDS),
             "", "[logging]", *render_fields(settings.logging, LOGGING_FIELDS),
             "", "[server]", *render_fields(settings.server, SERVER_FIELDS)]
    for key, (_, fields) in SECTIONS.items():
        lines += ["", f"[{key}]", *render_fields(getattr(settings, key), fields)]
    for scanner in settings.scanners:
        lines += ["", "[[scanners]]", *render_fields(scanner, SCANNER_FIELDS[scanner.kind])]
    lines += ["", *render_feedback(settings.button, settings.outputs, settings.patterns)]
    return "\n".join(lines) + "\n"
