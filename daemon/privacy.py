"""Client IDs in logs: a keyed hash instead of the ID itself.

A client ID opens the door, so it must not be readable in the journal. An unkeyed hash would not hide it (IDs are
short: M1001 is found by trying them all), so the hash is HMAC-SHA256 under a per-device secret key. The same ID
gives the same hash on one device, so a log reader can follow one tag through link attempts and check-ins
without learning it; whoever holds the key file can check a suspected ID.

The key is module state set once at start-up (`set_key(load_or_create_key(<state dir>/hash.key))`). Until then a
random per-process key is used: hashes are then consistent within the process but not across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat

from .errors import TagdError
from .roster import roster_key

log = logging.getLogger("tagd.privacy")

KEY_BYTES = 32
HASH_CHARS = 12  # 48 bits: no collisions in practice among one business's IDs, short enough to read
SERVER_MESSAGE_CHARS = 120
_ECHOED = re.compile(r"'[^']*'|\"[^\"]*\"|\{.*\}|\[.*\]", re.DOTALL)  # quoted values, JSON objects and arrays

_key = secrets.token_bytes(KEY_BYTES)


class KeyFileError(TagdError):
    """The hash key file could not be read or created, or does not hold a key."""


def client_hash(client_id: str) -> str:
    """The log form of a client ID. IDs that match case-insensitively (AB12, ab12) hash alike."""
    digest = hmac.new(_key, roster_key(client_id).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:HASH_CHARS]


def server_message_for_log(message: str) -> str:
    """A server's error message as tagd repeats it (logs, errors, dead-letter reasons, status): quoted values and
    JSON objects or arrays left out, since a refusal echoes the request (a 400 its whole body, a 409 the ID), on
    one line and at most SERVER_MESSAGE_CHARS long."""
    text = " ".join(_ECHOED.sub("…", message).split())
    return text if len(text) <= SERVER_MESSAGE_CHARS else text[:SERVER_MESSAGE_CHARS - 1] + "…"


def set_key(key: bytes) -> None:
    """Use `key` for every client_hash from now on."""
    global _key
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise KeyFileError(f"a hash key must be {KEY_BYTES} bytes")
    _key = key


def load_or_create_key(path: str) -> bytes:
    """The key in `path`; a new random one is written there first (mode 0600) when the file does not exist."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        return _create_key(path)
    except FileExistsError:  # another process created it meanwhile: theirs is the key
        return _read_key(path)


def _read_key(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            key = file.read(KEY_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the hash key: {exc.strerror or exc}") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: does not hold a {KEY_BYTES}-byte hash key; delete it to have a new key made "
                           f"(client hashes in the log will change)")
    if stat.S_IMODE(mode) & 0o077:
        log.warning("%s: readable by others (mode %o); whoever reads it can test IDs against the log hashes",
                    path, stat.S_IMODE(mode))
    return key


def _create_key(path: str) -> bytes:
    """Write the key to a private temporary file, then link it into place: the key file appears whole or not
    at all, and link() fails instead of replacing a key another process made first."""
    key = secrets.token_bytes(KEY_BYTES)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the hash key: {exc.strerror or exc}") from None
    finally:
        _remove(temporary)
    log.info("%s: new hash key for client IDs in the log", path)
    return key


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
