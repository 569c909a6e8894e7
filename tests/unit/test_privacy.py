"""Keyed hashes of client IDs for the log, and the per-device key file they depend on (real files)."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from daemon import privacy
from daemon.privacy import KEY_BYTES, KeyFileError, client_hash, load_or_create_key, set_key


@pytest.fixture(autouse=True)
def restore_key():
    saved = privacy._key
    yield
    privacy._key = saved


def test_hash_is_twelve_hex_characters_and_hides_the_id():
    hashed = client_hash("M1001")
    assert len(hashed) == 12 and all(c in "0123456789abcdef" for c in hashed)
    assert "1001" not in hashed


def test_same_id_same_hash_under_one_key_and_case_does_not_matter():
    set_key(b"k" * KEY_BYTES)
    assert client_hash("AbC123") == client_hash("abc123") == client_hash("ABC123")
    assert client_hash("abc123") != client_hash("abc124")


def test_non_ascii_letters_are_not_folded_like_the_roster():
    set_key(b"k" * KEY_BYTES)
    assert client_hash("\u212a123") != client_hash("k123")  # Kelvin sign is not 'k' for the roster either


def test_another_key_gives_other_hashes():
    set_key(b"a" * KEY_BYTES)
    first = client_hash("M1001")
    set_key(b"b" * KEY_BYTES)
    assert client_hash("M1001") != first


def test_hash_is_the_truncated_hmac_sha256_under_the_key():
    import hashlib
    import hmac

    set_key(bytes(range(KEY_BYTES)))
    expected = hmac.new(bytes(range(KEY_BYTES)), b"m1001", hashlib.sha256).hexdigest()[:12]
    assert client_hash("M1001") == expected


@pytest.mark.parametrize("key", [b"", b"x" * 31, b"x" * 33, "x" * 32])
def test_set_key_refuses_a_key_of_the_wrong_size_or_type(key):
    before = client_hash("M1001")
    with pytest.raises(KeyFileError, match="32 bytes"):
        set_key(key)
    assert client_hash("M1001") == before


def test_a_missing_key_file_is_created_private_and_then_reused(tmp_path):
    path = str(tmp_path / "hash.key")
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open(path, "rb").read() == key
    assert load_or_create_key(path) == key
    assert os.listdir(tmp_path) == ["hash.key"]  # no temporary file left behind


def test_two_devices_make_different_keys(tmp_path):
    assert load_or_create_key(str(tmp_path / "a.key")) != load_or_create_key(str(tmp_path / "b.key"))


def test_a_key_file_of_the_wrong_size_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "hash.key"
    path.write_bytes(b"short")
    with pytest.raises(KeyFileError, match=r"hash\.key: does not hold a 32-byte hash key; delete it"):
        load_or_create_key(str(path))
    assert path.read_bytes() == b"short"


def test_an_oversized_key_file_is_refused(tmp_path):
    path = tmp_path / "hash.key"
    path.write_bytes(b"x" * 64)
    with pytest.raises(KeyFileError, match="does not hold"):
        load_or_create_key(str(path))


def test_a_key_file_in_a_missing_directory_is_a_clear_error(tmp_path):
    path = str(tmp_path / "no-such-dir" / "hash.key")
    with pytest.raises(KeyFileError, match=r"no-such-dir/hash\.key: cannot create the hash key"):
        load_or_create_key(path)


def test_a_directory_in_place_of_the_key_file_is_a_clear_error(tmp_path):
    (tmp_path / "hash.key").mkdir()
    with pytest.raises(KeyFileError, match="cannot read the hash key"):
        load_or_create_key(str(tmp_path / "hash.key"))


def test_a_key_readable_by_others_is_used_with_a_warning(tmp_path, caplog):
    path = tmp_path / "hash.key"
    path.write_bytes(b"z" * KEY_BYTES)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="tagd.privacy"):
        assert load_or_create_key(str(path)) == b"z" * KEY_BYTES
    assert "readable by others" in caplog.text


def test_when_another_process_creates_the_key_first_its_key_wins(tmp_path, monkeypatch):
    path = str(tmp_path / "hash.key")
    real_link = os.link

    def link_after_the_other_process(source, destination):
        with open(destination, "wb") as other:  # the other process's key lands between our read and our link
            other.write(b"o" * KEY_BYTES)
        real_link(source, destination)

    monkeypatch.setattr(os, "link", link_after_the_other_process)
    assert load_or_create_key(path) == b"o" * KEY_BYTES
    assert open(path, "rb").read() == b"o" * KEY_BYTES
    assert os.listdir(tmp_path) == ["hash.key"]


def test_hashes_follow_the_key_from_the_file(tmp_path):
    path = str(tmp_path / "hash.key")
    set_key(load_or_create_key(path))
    first = client_hash("M1001")
    privacy._key = b"\0" * KEY_BYTES  # as a restart before set_key would have it
    set_key(load_or_create_key(path))
    assert client_hash("M1001") == first
