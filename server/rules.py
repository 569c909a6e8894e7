"""Pure rules of the server: client ID validation and normalisation, random IDs, policy, codes and tokens.

No I/O here: every function takes values and returns values (or raises a ServerError subclass).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from server.errors import InvalidRequest, RuleViolation

ID_CHARS = re.compile(r"[A-Za-z0-9]+")
MAX_ID_LENGTH = 64
# Readable default: no 0/O, 1/I/L confusion when staff read an ID off a tag or type it in.
DEFAULT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ENROLMENT_ALPHABET = DEFAULT_ALPHABET
# With a free fraction f of the ID space, this many draws all collide with probability (1-f)^64: negligible
# unless the space is nearly full, and then `id_space_exhausted` is the honest answer.
GENERATION_ATTEMPTS = 64
ENROLMENT_CODE_LENGTH = 12  # 12 chars of a 31-char alphabet: ~59 bits, one use, expires within a week at most


@dataclass(frozen=True)
class Policy:
    """A business's ID rules and its auto-generation policy."""

    auto_generate_ids: bool = False
    id_min_length: int = 4
    id_max_length: int = 32
    generated_length: int = 8
    generated_alphabet: str = DEFAULT_ALPHABET


def normalise_id(client_id: str) -> str:
    """The key IDs are compared and stored unique by: ASCII lower case (a tag read with caps lock on matches)."""
    return client_id.lower()


def is_valid_id(client_id: str, policy: Policy) -> bool:
    try:
        validate_id(client_id, policy)
    except RuleViolation:
        return False
    return True


def validate_id(client_id: str, policy: Policy) -> str:
    """Return the ID unchanged if it follows the rules, else raise RuleViolation('invalid_id')."""
    if not (client_id.isascii() and ID_CHARS.fullmatch(client_id)):
        raise RuleViolation("invalid_id", f"client ID {client_id!r} must consist of A-Z, a-z and 0-9 only")
    if not policy.id_min_length <= len(client_id) <= policy.id_max_length:
        raise RuleViolation(
            "invalid_id",
            f"client ID {client_id!r} must be {policy.id_min_length} to {policy.id_max_length} characters long",
        )
    return client_id


def validate_policy(policy: Policy) -> Policy:
    """Return the policy if consistent, else raise RuleViolation('invalid_policy') naming the broken rule."""
    problem = _policy_problem(policy)
    if problem:
        raise RuleViolation("invalid_policy", problem)
    return policy


def _policy_problem(p: Policy) -> str | None:
    if not 1 <= p.id_min_length <= p.id_max_length <= MAX_ID_LENGTH:
        return f"need 1 <= id_min_length <= id_max_length <= {MAX_ID_LENGTH}"
    if not p.id_min_length <= p.generated_length <= p.id_max_length:
        return "generated_length must lie within id_min_length..id_max_length"
    return alphabet_problem(p.generated_alphabet)


def alphabet_problem(alphabet: str) -> str | None:
    """Why an alphabet is unusable for random IDs, or None. Case-folded duplicates would skew the odds."""
    if not (alphabet.isascii() and ID_CHARS.fullmatch(alphabet)):
        return "generated_alphabet must consist of A-Z, a-z and 0-9 only"
    if len(set(alphabet.lower())) != len(alphabet):
        return "generated_alphabet must not repeat a character (upper and lower case count as the same)"
    if len(alphabet) < 2:
        return "generated_alphabet needs at least 2 characters"
    return None


def random_id(length: int, alphabet: str, choice: Callable[[str], str] = secrets.choice) -> str:
    """A random ID from a cryptographic source (tags must not be guessable from their neighbours)."""
    return "".join(choice(alphabet) for _ in range(length))


def new_token() -> str:
    """A bearer token: 256 bits from the OS CSPRNG."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Tokens and enrolment codes are high-entropy, so one sha256 round is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_enrolment_code() -> str:
    raw = random_id(ENROLMENT_CODE_LENGTH, ENROLMENT_ALPHABET)
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalise_enrolment_code(code: str) -> str:
    """Codes are typed by people: ignore case, dashes and spaces."""
    return re.sub(r"[\s-]", "", code).upper()


@dataclass(frozen=True)
class RosterCursor:
    """Where a roster read continues: after change `seq`, within a full sync (`f<seq>`) or as a delta (`<seq>`).

    A full sync's own pages are exempt from the change-log horizon: a device building its roster from empty
    needs no tombstone it missed, so a full sync that started below the horizon must still be able to finish.
    """

    seq: int = 0
    full: bool = True

    def __str__(self) -> str:
        return f"f{self.seq}" if self.full else str(self.seq)


def parse_cursor(cursor: str | None) -> RosterCursor:
    """None starts a full sync; otherwise a value returned as next_cursor."""
    if cursor is None:
        return RosterCursor()
    full = cursor.startswith("f")
    digits = cursor[1:] if full else cursor
    if not digits.isdigit() or not digits.isascii() or len(digits) > 18:
        raise InvalidRequest("invalid_request", "cursor must be a value returned as next_cursor")
    return RosterCursor(int(digits), full)


def format_time(moment: datetime) -> str:
    """The one time format the server stores and returns: UTC, microseconds, 'Z' (sorts as text)."""
    # isoformat pads the year to four digits (strftime's %Y does not on Linux for years before 1000).
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time with an offset (naive times are ambiguous and refused)."""
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidRequest("invalid_request", f"{text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise InvalidRequest("invalid_request", f"{text!r} has no UTC offset")
    return moment


def canonical_time(text: str) -> str:
    try:
        return format_time(parse_time(text))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        raise InvalidRequest("invalid_request", f"{text!r} is out of range") from None
