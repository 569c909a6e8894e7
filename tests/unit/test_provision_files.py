"""The pure parts of `tagd provision`: editing tagd.toml's [server] table, the hardware id, the unit's token path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config_edit import checked_update, update_server_table
from daemon.errors import ConfigError
from daemon.hostid import HostIdError, hardware_id
from daemon.provision import TOKEN_FILE, Host, Request, _commands, credential_source, tagd_executable
from daemon.provision_template import CONFIG_TEMPLATE

REPO = Path(__file__).resolve().parents[2]
VALUES = {"url": "https://checkin.example.com", "token_file": "", "ca_file": "/etc/tagd/ca.pem"}
EXISTING = """\
# my reader
[server]
url = "https://old.example.com"  # the old one
read_timeout_s = 7.0

[[scanners]]
type = "serial"
name = "door"
port = "/dev/ttyACM0"
"""


def test_only_the_server_keys_change_and_comments_and_scanners_stay():
    updated = update_server_table(EXISTING, VALUES)
    assert updated.splitlines()[:3] == ["# my reader", "[server]", 'token_file = ""']
    assert 'url = "https://checkin.example.com"' in updated and "old.example.com" not in updated
    parsed = tomllib.loads(updated)
    assert parsed["server"] == {**VALUES, "read_timeout_s": 7.0}
    assert parsed["scanners"] == [{"type": "serial", "name": "door", "port": "/dev/ttyACM0"}]


def test_a_file_without_server_table_gets_one_appended():
    updated = update_server_table('[scan]\nmin_length = 5', VALUES)
    assert tomllib.loads(updated) == {"scan": {"min_length": 5}, "server": VALUES}


def test_updating_twice_changes_nothing_more():
    once = update_server_table(EXISTING, VALUES)
    assert update_server_table(once, VALUES) == once


def test_dotted_server_keys_cannot_be_edited_in_place_and_say_so():
    with pytest.raises(ConfigError, match="write it as a \\[server\\] table"):
        checked_update('server.url = "https://old.example.com"\n', VALUES, "tagd.toml", CONFIG_TEMPLATE, "/x")


def test_a_broken_existing_file_is_refused_not_repaired():
    with pytest.raises(ConfigError, match="invalid TOML"):
        checked_update("[server\n", VALUES, "tagd.toml", CONFIG_TEMPLATE, "/var/lib/tagd")


def test_the_new_file_template_is_valid_and_holds_the_values():
    text, settings_ = checked_update(None, VALUES, "tagd.toml", CONFIG_TEMPLATE, "/var/lib/tagd")
    assert settings_.server.url == VALUES["url"] and settings_.state.dir == "/var/lib/tagd"
    assert settings_.scanners == ()  # examples only, commented out


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_url_text_round_trips_through_the_edit(url):
    assert tomllib.loads(update_server_table(EXISTING, {"url": url}))["server"]["url"] == url


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_a_pis_board_serial_is_preferred_to_the_machine_id(tmp_path):
    write(tmp_path, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000ABCDEF12\n")
    assert hardware_id(str(tmp_path)) == "pi-serial:10000000abcdef12"


def test_without_a_serial_the_machine_id_is_sent_only_as_an_app_specific_hash(tmp_path):
    write(tmp_path, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write(tmp_path, "/proc/cpuinfo", "Serial\t\t: 0000000000000000\n")  # unset serial: not an identity
    found = hardware_id(str(tmp_path))
    assert found.startswith("machine:") and len(found) == len("machine:") + 32
    assert "0123456789abcdef" not in found
    write(tmp_path, "/etc/machine-id", "fedcba9876543210fedcba9876543210\n")
    assert hardware_id(str(tmp_path)) != found


def test_no_machine_id_and_no_serial_is_a_clear_error(tmp_path):
    write(tmp_path, "/etc/machine-id", "uninitialized\n")
    with pytest.raises(HostIdError, match="systemd-machine-id-setup"):
        hardware_id(str(tmp_path))


def test_the_token_goes_where_the_packaged_unit_loads_it_from():
    unit = (REPO / "systemd" / "tagd.service").read_text()
    assert credential_source(unit) == TOKEN_FILE
    assert "@TAGD@" in unit  # the placeholder provision fills in


def test_the_unit_gets_the_tagd_script_beside_this_python(tmp_path):
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    (python.parent / "tagd").write_text("#!/bin/sh\n")
    assert tagd_executable("-c", str(python)) == str(python.parent / "tagd")
    assert tagd_executable(str(python.parent / "tagd"), "/usr/bin/python3") == str(python.parent / "tagd")


def test_the_live_system_gets_the_gpio_group_reloads_and_a_trigger_but_an_image_root_gets_none():
    def host(has_gpio: bool) -> Host:
        return Host(tagd="/opt/tagd/.venv/bin/tagd", which=lambda tool: f"/usr/sbin/{tool}",
                    has_group=lambda name: has_gpio)

    live = _commands(Request("https://x.example", "CODE"), host(has_gpio=False))
    assert live[0] == ("groupadd", "-f", "--system", "gpio")
    assert ("systemctl", "daemon-reload") in live and ("udevadm", "control", "--reload") in live
    assert live[-1][:2] == ("udevadm", "trigger")
    assert _commands(Request("https://x.example", "CODE"), host(has_gpio=True))[0] == ("systemctl", "daemon-reload")
    assert _commands(Request("https://x.example", "CODE", root="/mnt/image"), host(has_gpio=False)) == ()
    no_tools = Host(tagd="/t", which=lambda tool: None, has_group=lambda name: False)
    assert _commands(Request("https://x.example", "CODE"), no_tools) == ()
