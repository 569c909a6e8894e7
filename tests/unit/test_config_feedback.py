"""[button], [[outputs]] and [patterns.*]: parsed into settings, printed back, every mistake named by key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from daemon.config_feedback import parse_feedback, render_feedback
from daemon.errors import ConfigError
from daemon.settings import ButtonSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "tagd.example.toml"


def parse(text: str) -> dict:
    return parse_feedback(tomllib.loads(text), "tagd.toml")


def test_nothing_configured_means_no_button_no_outputs_default_patterns():
    assert parse("") == {"button": ButtonSettings(), "outputs": (), "patterns": ()}


def test_the_example_parses_and_round_trips_through_render():
    settings = parse(EXAMPLE.read_text())
    assert settings["button"].kind == "evdev" and len(settings["outputs"]) >= 3
    assert parse("\n".join(render_feedback(**settings))) == settings


def test_led_path_defaults_from_its_name_and_names_default_from_kind_and_index():
    settings = parse('[[outputs]]\ntype = "led"\nname = "act"\nrole = "green"\n'
                     '[[outputs]]\ntype = "gpiod"\nline = 18\nrole = "buzzer"\n')
    led, line = settings["outputs"]
    assert led.path == "/sys/class/leds/act" and line.name == "gpiod-1"


@pytest.mark.parametrize("text, message", [
    ('[button]\ntype = "evdev"\nkey = "KEY_PROG1"',
     "tagd.toml: button: an evdev button needs device, vendor_product or name_pattern"),
    ('[button]\ntype = "evdev"\nname_pattern = "b*"\nline = 4',
     "tagd.toml: button.line: unknown key for type 'evdev' (gpiod only)"),
    ('[button]\ntype = "gpiod"\nbias = "up"', "tagd.toml: button.bias: must be one of as-is, disabled, pull-up"),
    ('[button]\ntype = "evdev"\nname_pattern = "b*"\nkey = "prog1"', "tagd.toml: button.key: must be an evdev key"),
    ('[button]\ntype = "usb"', "tagd.toml: button.type: must be one of none, evdev, gpiod, fake"),
    ('[[outputs]]\ntype = "led"\nrole = "green"', "tagd.toml: outputs[0]: an led output needs name"),
    ('[[outputs]]\ntype = "beeper"\nrole = "buzzer"', "tagd.toml: outputs[0].path: missing"),
    ('[[outputs]]\ntype = "led"\nname = "a"', "tagd.toml: outputs[0].role: missing"),
    ('[[outputs]]\ntype = "led"\nname = "a"\nrole = "x"\n[[outputs]]\ntype = "led"\nname = "a"\nrole = "y"',
     'tagd.toml: outputs[1].name: "a" is already the name of outputs[0]'),
    ('[patterns.acepted]\ngreen = "on:100"', "tagd.toml: patterns.acepted: unknown key; did you mean 'accepted'?"),
    ('[patterns.accepted]\ngren = "on:100"', "tagd.toml: patterns.accepted.gren: no output has role 'gren'"),
    ('[patterns.accepted]\ngreen = "on:100 flash"', "tagd.toml: patterns.accepted.green: 'flash' is not a step"),
    ('[patterns.accepted]\ngreen = 100', "tagd.toml: patterns.accepted.green: must be a string of steps"),
    ('[patterns]\naccepted = "on"', "tagd.toml: patterns.accepted: must be a table"),
])
def test_mistakes_are_named_by_file_and_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)


def test_the_example_documents_every_default_pattern():
    from daemon.patterns import DEFAULT_TABLE, format_pattern

    text = EXAMPLE.read_text()
    for signal, roles in DEFAULT_TABLE.items():
        assert f"#   {signal} " in text
        for pattern in roles.values():
            assert f'"{format_pattern(pattern)}"' in text, (signal, pattern)
