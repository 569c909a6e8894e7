"""The building blocks of daemon.config: small field checkers, a table walker and TOML value rendering.

A checker takes the raw value tomllib produced and returns the settings value, or raises `Problem` with the text
the user will read after the key path. Checkers know nothing of files or key paths; the walker adds both, so every
message comes out as `tagd.toml: scanners[1].baudrate: must be one of 1200..921600, got "fast"`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, TagdError

Checker = Callable[[Any], Any]
HIDDEN = "<hidden>"


class Problem(TagdError):
    """A value failed its check. `subkey` extends the key path below the checked key (e.g. '[2]' in an array)."""

    def __init__(self, problem: str, subkey: str = ""):
        super().__init__(problem)
        self.problem, self.subkey = problem, subkey


# ---- describing and rendering values -------------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string. Control characters and DEL must be escaped; everything else may appear as is."""
    def escape(char: str) -> str:
        if char in _ESCAPES:
            return _ESCAPES[char]
        return f"\\u{ord(char):04x}" if char < " " or char == "\x7f" else char

    return '"' + "".join(map(escape, text)) + '"'


def toml_value(value: bool | int | float | str | Sequence) -> str:
    """A settings value as TOML. Settings only hold these types (str enums count as str)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (int, float)):
        return repr(value)  # repr keeps floats exact: parse(render(x)) gives back the same float
    return "[" + ", ".join(map(toml_value, value)) + "]"


def describe(value: Any) -> str:
    """What the user wrote, for the 'got ...' part of a message."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (bool, int, float, str)):
        return toml_value(value)
    return value.isoformat()  # the only other TOML values are dates and times


# ---- checkers --------------------------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # TOML true is not 1


def int_range(low: int, high: int) -> Checker:
    """An integer in low..high. Floats are refused even when whole: 9600.0 baud is a typo worth reporting."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Problem(f"must be one of {low}..{high}, got {describe(value)}")
        return value

    return check


def float_range(low: float, high: float, *, above: bool = False) -> Checker:
    """A number in [low, high], or (low, high] when `above`; ints are accepted and returned as float."""
    bound = f"> {low}" if above else f">= {low}"

    def check(value: Any) -> float:
        # NaN fails every comparison, so it is refused here along with the out-of-range values.
        if not _is_number(value) or not (low < value if above else low <= value) or not value <= high:
            raise Problem(f"must be a number {bound} and <= {high}, got {describe(value)}")
        return float(value)

    return check


def one_of(*choices: str | float) -> Checker:
    """Exactly one of `choices` (strings or numbers, never booleans); returns the matching choice itself."""
    listed = ", ".join(str(choice) for choice in choices)

    def check(value: Any) -> str | float:
        for choice in choices:
            same_kind = isinstance(value, str) if isinstance(choice, str) else _is_number(value)
            if same_kind and value == choice:
                return choice
        raise Problem(f"must be one of {listed}, got {describe(value)}")

    return check


def string(*, non_empty: bool = False) -> Checker:
    what = "a non-empty string" if non_empty else "a string"

    def check(value: Any) -> str:
        if not isinstance(value, str) or (non_empty and not value):
            raise Problem(f"must be {what}, got {describe(value)}")
        return value

    return check


def matching(pattern: str, what: str, convert: Callable[[str], str] = str) -> Checker:
    """A string that fully matches `pattern`; `what` says in words what is expected."""
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise Problem(f"must be {what}, got {describe(value)}")
        return convert(value)

    return check


def boolean() -> Checker:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Problem(f"must be true or false, got {describe(value)}")
        return value

    return check


def str_list(item: Checker) -> Checker:
    """An array whose every element passes `item`; returned as a tuple. An element's error names its index."""
    def check_item(index: int, value: Any) -> Any:
        try:
            return item(value)
        except Problem as problem:
            raise Problem(problem.problem, f"[{index}]{problem.subkey}") from None

    def check(value: Any) -> tuple:
        if not isinstance(value, list):
            raise Problem(f"must be an array of strings, got {describe(value)}")
        return tuple(check_item(index, element) for index, element in enumerate(value))

    return check


def text_encoding() -> Checker:
    """A Python text codec name ('ascii', 'utf-8', 'latin-1'); bytes-to-bytes codecs such as 'hex' are refused."""
    def ascii_compatible(name: str) -> bool:
        # Serial framing looks for CR, LF, STX and ETX as single bytes, so the codec must keep ASCII as ASCII
        # (utf-16 and friends would split every terminator into two bytes).
        probe = "\r\n\x02\x03A1"
        try:
            return probe.encode(name) == probe.encode("ascii") and b"a".decode(name) == "a"
        except (LookupError, UnicodeError, TypeError):
            return False

    def check(value: Any) -> str:
        if not isinstance(value, str) or not ascii_compatible(value):
            raise Problem(f'must be an ASCII-compatible text encoding such as "ascii", "utf-8" or "latin-1", '
                          f'got {describe(value)}')
        return value

    return check


def http_url() -> Checker:
    """'' (no URL) or an http:// or https:// URL with a host."""
    def check(value: Any) -> str:
        parts = urlsplit(value) if isinstance(value, str) and not re.search(r"\s", value) else None
        if value != "" and not (parts and parts.scheme in ("http", "https") and parts.hostname):
            raise Problem(f'must be an http:// or https:// URL such as "https://checkin.example.com", '
                          f"got {describe(value)}")
        return value

    return check


def off_when_zero(check: Checker) -> Checker:
    """TOML has no null: 0 stands for None ('this check is off')."""
    return lambda value: check(value) or None


# ---- tables ----------------------------------------------------------------------------------------------------

def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One TOML key: how to check it, where its value lives on the settings object and how to print it back."""

    key: str
    check: Checker
    attr: str = ""  # dotted attribute path on the settings object ('rules.prefix'); empty means `key`
    required: bool = False
    secret: bool = False  # render prints "<hidden>" instead of the value
    to_toml: Callable[[Any], Any] = _identity  # the inverse of `check` where the two types differ

    @property
    def target(self) -> str:
        return self.attr or self.key


def key_path(parent: str, key: str) -> str:
    """`parent.key`, quoting keys that are not bare TOML keys so the path stays unambiguous."""
    shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)
    return f"{parent}.{shown}" if parent else shown


def unknown_key(key: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key; expected one of {', '.join(known)}"


def reject_unknown(table: Mapping[str, Any], known: Iterable[str], path: str, file: str,
                   note: Callable[[str], str | None] = lambda key: None) -> None:
    """Raise for the first key of `table` not in `known`; `note` may explain it better than a spelling guess."""
    known = list(known)
    for key in table:
        if key not in known:
            raise ConfigError(file, key_path(path, key), note(key) or unknown_key(key, known))


def checked(check: Checker, value: Any, path: str, file: str) -> Any:
    try:
        return check(value)
    except Problem as problem:
        raise ConfigError(file, path + problem.subkey, problem.problem) from None


def walk(table: Mapping[str, Any], fields: Sequence[Field], path: str, file: str,
         note: Callable[[str], str | None] = lambda key: None) -> dict[str, Any]:
    """Check a TOML table against `fields`: {target: value} for the keys present; unknown or missing keys raise."""
    reject_unknown(table, [field.key for field in fields], path, file, note)
    for field in fields:
        if field.required and field.key not in table:
            raise ConfigError(file, key_path(path, field.key), "missing; this key is required")
    return {field.target: checked(field.check, table[field.key], key_path(path, field.key), file)
            for field in fields if field.key in table}


def render_fields(settings: object, fields: Sequence[Field]) -> list[str]:
    """`key = value` lines for every field, read back from the settings object."""
    def line(field: Field) -> str:
        value = functools.reduce(getattr, field.target.split("."), settings)
        return f"{field.key} = {toml_string(HIDDEN) if field.secret else toml_value(field.to_toml(value))}"

    return [line(field) for field in fields]


def array_of_tables(tables: Any, key: str, file: str, build: Callable[[Any, str, int], Any]) -> tuple:
    """`[[key]]` tables, each built by `build(table, path, index)`; their names must be unique."""
    if not isinstance(tables, list):
        raise ConfigError(file, key, f"must be an array of tables ([[{key}]]), got {describe(tables)}")
    items = tuple(build(table, f"{key}[{index}]", index) for index, table in enumerate(tables))
    first_with_name: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.name in first_with_name:
            raise ConfigError(file, f"{key}[{index}].name",
                              f"{describe(item.name)} is already the name of {key}[{first_with_name[item.name]}]")
        first_with_name[item.name] = index
    return items
