"""Configuration of the staff button, the feedback outputs and the pattern table: `[button]`, `[[outputs]]`,
`[patterns.<signal>]`. Field tables and checkers for daemon.config, which calls `parse_feedback` and
`render_feedback`. Keys are documented in config/tagd.example.toml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .config_fields import (Field, array_of_tables, Problem, boolean, checked, describe, float_range, int_range, key_path,
                            matching, one_of, reject_unknown, render_fields, string, toml_string, walk)
from .errors import ConfigError
from .patterns import ROLES, Signal, format_pattern, parse_pattern
from .settings import ButtonSettings, OutputSettings, PatternOverride

FEEDBACK_KEYS = ("button", "outputs", "patterns")  # top-level keys this module owns
LEDS_DIR = "/sys/class/leds"
BIASES = ("as-is", "disabled", "pull-up", "pull-down")

_ABSOLUTE = r"|/.+"
_ROLE = matching(r"[a-z][a-z0-9_-]*", 'a role name such as "green", "red" or "buzzer"')
_CHIP = Field("chip", matching(r"/.+", 'a GPIO chip device such as "/dev/gpiochip0"'))
_LINE = Field("line", int_range(0, 1023))


def _kind(kind: str) -> Field:
    return Field("type", one_of(kind), "kind")


_TIMING = (Field("debounce_ms", float_range(0, 1000)), Field("long_press_s", float_range(0.1, 60)))
BUTTON_FIELDS: dict[str, tuple[Field, ...]] = {
    "none": (_kind("none"),),
    "evdev": (
        _kind("evdev"),
        Field("device", matching(_ABSOLUTE, 'an absolute path such as "/dev/input/by-path/platform-button@11-event"')),
        Field("vendor_product", matching(r"|[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", "'hhhh:hhhh' (hex vendor:product)",
                                         str.lower)),
        Field("name_pattern", string()),
        Field("key", matching(r"(KEY|BTN)_[A-Z0-9_]+", 'an evdev key code name such as "KEY_PROG1"')),
        Field("grab", boolean()),
        *_TIMING,
    ),
    "gpiod": (_kind("gpiod"), _CHIP, _LINE, Field("active_low", boolean()), Field("bias", one_of(*BIASES)),
              *_TIMING),
    "fake": (_kind("fake"), *_TIMING),
}

OUTPUT_FIELDS: dict[str, tuple[Field, ...]] = {
    "led": (_kind("led"), Field("name", string()), Field("role", _ROLE, required=True),
            Field("path", matching(_ABSOLUTE, 'an absolute path such as "/sys/class/leds/green"'))),
    "gpiod": (_kind("gpiod"), Field("name", string()), Field("role", _ROLE, required=True), _CHIP,
              Field("line", int_range(0, 1023), required=True), Field("active_low", boolean())),
    "beeper": (_kind("beeper"), Field("name", string()), Field("role", _ROLE, required=True),
               Field("path", matching(r"/.+", 'an input device such as "/dev/input/by-path/platform-beeper-event"'),
                     required=True)),
    "terminal": (_kind("terminal"), Field("name", string())),
}


def parse_feedback(data: Mapping[str, Any], file: str) -> dict[str, Any]:
    """{'button': ..., 'outputs': ..., 'patterns': ...} for Settings(**...), from the whole TOML document."""
    outputs = parse_outputs(data.get("outputs", []), file)
    roles = {output.role for output in outputs} | set(ROLES)
    return {"button": parse_button(_table(data, "button", file), file), "outputs": outputs,
            "patterns": parse_patterns(_table(data, "patterns", file), file, roles)}


def parse_button(table: Mapping[str, Any], file: str) -> ButtonSettings:
    kind = _type(table, "button", BUTTON_FIELDS, file, default="none")
    button = ButtonSettings(**walk(table, BUTTON_FIELDS[kind], "button", file, note=_elsewhere(BUTTON_FIELDS, kind)))
    if kind == "evdev" and not (button.device or button.vendor_product or button.name_pattern):
        raise ConfigError(file, "button", "an evdev button needs device, vendor_product or name_pattern to find it")
    return button


def parse_outputs(tables: Any, file: str) -> tuple[OutputSettings, ...]:
    return array_of_tables(tables, "outputs", file, lambda table, path, index: _output(table, path, index, file))


def _output(table: Any, path: str, index: int, file: str) -> OutputSettings:
    if not isinstance(table, dict):
        raise ConfigError(file, path, f"must be a table, got {describe(table)}")
    kind = _type(table, path, OUTPUT_FIELDS, file)
    values = walk(table, OUTPUT_FIELDS[kind], path, file, note=_elsewhere(OUTPUT_FIELDS, kind))
    if kind == "led":
        if not values.get("name") and not values.get("path"):
            raise ConfigError(file, path, "an led output needs name (/sys/class/leds/<name>) or path")
        values["path"] = values.get("path") or os.path.join(LEDS_DIR, values["name"])
        values["name"] = values.get("name") or os.path.basename(values["path"].rstrip("/"))
    values["name"] = values.get("name") or f"{kind}-{index}"
    return OutputSettings(**values)


def parse_patterns(table: Mapping[str, Any], file: str, roles: set[str]) -> tuple[PatternOverride, ...]:
    """`[patterns.<signal>] <role> = "<steps>"` → overrides, steps in canonical form. Roles must be known."""
    reject_unknown(table, list(Signal), "patterns", file)
    overrides = []
    for signal, cells in table.items():
        path = key_path("patterns", signal)
        if not isinstance(cells, dict):
            raise ConfigError(file, path, f"must be a table of role = \"steps\", got {describe(cells)}")
        for role, text in cells.items():
            reject_unknown({role: None}, sorted(roles), path, file,
                           note=lambda key: f"no output has role {key!r}; roles: {', '.join(sorted(roles))}")
            steps = checked(_steps, text, key_path(path, role), file)
            overrides.append(PatternOverride(signal, role, steps))
    return tuple(overrides)


def _steps(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"must be a string of steps such as \"on:1500\", got {describe(value)}")
    return format_pattern(parse_pattern(value))


def render_feedback(button: ButtonSettings, outputs: tuple[OutputSettings, ...],
                    patterns: tuple[PatternOverride, ...]) -> list[str]:
    """TOML lines for these settings; daemon.config.render appends them."""
    lines = ["[button]", *render_fields(button, BUTTON_FIELDS[button.kind])]
    for output in outputs:
        lines += ["", "[[outputs]]", *render_fields(output, OUTPUT_FIELDS[output.kind])]
    by_signal: dict[str, list[PatternOverride]] = {}
    for override in patterns:
        by_signal.setdefault(override.signal, []).append(override)
    for signal, cells in by_signal.items():
        lines += ["", f"[{key_path('patterns', signal)}]"]
        lines += [f"{key_path('', cell.role)} = {toml_string(cell.steps)}" for cell in cells]
    return lines


def _table(data: Mapping[str, Any], key: str, file: str) -> Mapping[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(file, key, f"must be a table, got {describe(table)}")
    return table


def _type(table: Mapping[str, Any], path: str, kinds: Mapping[str, Any], file: str, default: str = "") -> str:
    if "type" not in table:
        if default:
            return default
        raise ConfigError(file, key_path(path, "type"), f"missing; must be one of {', '.join(kinds)}")
    return checked(one_of(*kinds), table["type"], key_path(path, "type"), file)


def _elsewhere(tables: Mapping[str, tuple[Field, ...]], kind: str):
    """'line' in an evdev button is not a typo but a key of another type: say so."""
    def note(key: str) -> str | None:
        owners = [other for other, fields in tables.items() if other != kind and key in {f.key for f in fields}]
        return f"unknown key for type {kind!r} ({' and '.join(owners)} only)" if owners else None

    return note
