"""The [link] table: its keys, their bounds, and printing them back."""

from __future__ import annotations

import tomllib

import pytest

from daemon.config_fields import render_fields, walk
from daemon.config_link import LINK_FIELDS
from daemon.errors import ConfigError
from daemon.settings import LinkSettings


def parsed(table: dict) -> LinkSettings:
    return LinkSettings(**walk(table, LINK_FIELDS, "link", "tagd.toml"))


def test_an_empty_table_gives_the_defaults():
    assert parsed({}) == LinkSettings(timeout_s=60.0, confirm_s=10.0, staff_cards=())


def test_every_key_is_read():
    settings = parsed({"timeout_s": 30, "confirm_s": 5.5, "staff_cards": ["STAFF01", "desk2"]})
    assert settings == LinkSettings(timeout_s=30.0, confirm_s=5.5, staff_cards=("STAFF01", "desk2"))


def test_printed_settings_read_back_the_same():
    settings = LinkSettings(timeout_s=42.5, confirm_s=7.0, staff_cards=("STAFF01", "Desk2"))
    text = "\n".join(render_fields(settings, LINK_FIELDS))
    assert parsed(tomllib.loads(text)) == settings


@pytest.mark.parametrize("table, key, problem", [
    ({"timeout_s": 0}, "link.timeout_s", "must be a number >= 5 and <= 600, got 0"),
    ({"timeout_s": 3600}, "link.timeout_s", "<= 600"),  # a reader must never be left in link mode for long
    ({"timeout_s": "60"}, "link.timeout_s", 'got "60"'),
    ({"confirm_s": 0.5}, "link.confirm_s", "must be a number >= 1 and <= 60"),
    ({"staff_cards": "STAFF01"}, "link.staff_cards", "must be an array of strings"),
    ({"staff_cards": ["STAFF01", "STAFF 02"]}, "link.staff_cards[1]", "letters and digits"),
    ({"staff_cards": [""]}, "link.staff_cards[0]", "letters and digits"),
    ({"staff_cards": [1234]}, "link.staff_cards[0]", "got 1234"),
    ({"timeout": 60}, "link.timeout", "did you mean 'timeout_s'?"),
])
def test_a_bad_value_names_the_key_and_the_problem(table, key, problem):
    with pytest.raises(ConfigError) as raised:
        parsed(table)
    assert raised.value.key == key and problem in raised.value.problem
