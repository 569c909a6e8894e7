"""Editing tagd.toml as text, for `tagd provision`: change a few [server] keys and keep everything else as written.

tomllib only reads, and rendering the settings back would drop the person's comments and defaults they left out,
so the [server] table is edited line by line. The result is always read back and validated by the caller
(`checked_update`): an edit that would not parse, or would not give exactly the values asked for, is refused.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping

from . import config
from .config_fields import toml_string
from .errors import ConfigError
from .settings import Settings

_HEADER = re.compile(r"^\s*\[\s*(\[?)\s*([^\]]*?)\s*\]")  # [table] or [[array]]; the name, without quotes
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")


def new_config(server: Mapping[str, str], state_dir: str, template: str) -> str:
    """A fresh tagd.toml: `template` (comments and examples) with the [server] and [state] values filled in."""
    return template.format(**{key: toml_string(value) for key, value in server.items()},
                           state_dir=toml_string(state_dir))


def update_server_table(text: str, values: Mapping[str, str]) -> str:
    """`text` with each key of `values` set in its [server] table (a key line replaced, or added after the header);
    a [server] table is appended when there is none. Other lines, comments included, stay as they are."""
    lines = text.splitlines(keepends=True)
    start = _server_header(lines)
    if start is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        return text + tail + "\n[server]\n" + "".join(f"{key} = {toml_string(v)}\n" for key, v in values.items())
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    missing = dict(values)
    for index in range(start + 1, end):
        key = _key_of(lines[index])
        if key in missing:
            lines[index] = f"{key} = {toml_string(missing.pop(key))}\n"
    added = [f"{key} = {toml_string(value)}\n" for key, value in missing.items()]
    return "".join(lines[:start + 1] + added + lines[start + 1:])


def checked_update(text: str | None, values: Mapping[str, str], file: str, template: str, state_dir: str,
                   ) -> tuple[str, Settings]:
    """The new file content and the settings it gives, validated; ConfigError (nothing to write) otherwise.

    An existing file must itself be valid first: provisioning does not paper over a broken configuration.
    """
    if text is None:
        updated = new_config(values, state_dir, template)
        return updated, _parse(updated, file)
    _parse(text, file)
    updated = update_server_table(text, values)
    try:
        settings = _parse(updated, file)
    except ConfigError:
        settings = None
    if settings is None or {key: getattr(settings.server, key) for key in values} != dict(values):
        raise ConfigError(file, "server", "cannot update the [server] table in place (is it written as dotted keys "
                                          "or an inline table?): write it as a [server] table and run again")
    return updated, settings


def _parse(text: str, file: str) -> Settings:
    try:
        data = tomllib.loads(text.lstrip("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"invalid TOML: {exc}") from None
    return config.parse(data, file)


def _server_header(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        found = _HEADER.match(line)
        if found and not found.group(1) and found.group(2).strip("\"'") == "server":
            return index
    return None


def _key_of(line: str) -> str | None:
    found = _KEY.match(line)
    return next((group for group in found.groups() if group is not None), None) if found else None
