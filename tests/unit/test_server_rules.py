"""The server's pure rules: ID validation and normalisation, random IDs, policy, codes, cursors, times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import InvalidRequest, RuleViolation
from server.rules import (DEFAULT_ALPHABET, Policy, canonical_time, hash_secret, is_valid_id, new_enrolment_code,
                          new_token, normalise_enrolment_code, normalise_id, parse_cursor, RosterCursor, random_id, validate_id,
                          validate_policy)

ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=32)


@given(ALNUM)
@settings(max_examples=50)
def test_case_variants_of_an_id_share_one_key(client_id):
    assert normalise_id(client_id.upper()) == normalise_id(client_id.lower()) == normalise_id(client_id)


@given(ALNUM)
@settings(max_examples=50)
def test_every_alphanumeric_id_within_the_lengths_is_valid(client_id):
    assert validate_id(client_id, Policy()) == client_id


@pytest.mark.parametrize("bad", ["abc", "x" * 33, "AB-12", "AB 12", "ÄBCD", "١٢٣٤", "", "ab12\n"])
def test_ids_breaking_the_rules_are_refused(bad):
    with pytest.raises(RuleViolation) as caught:
        validate_id(bad, Policy())
    assert caught.value.code == "invalid_id" and not is_valid_id(bad, Policy())


def test_length_rules_come_from_the_policy():
    policy = Policy(id_min_length=2, id_max_length=3, generated_length=3)
    assert is_valid_id("ab", policy) and not is_valid_id("abcd", policy)


@given(st.integers(min_value=1, max_value=32), st.sampled_from([DEFAULT_ALPHABET, "AB", "0123456789"]))
@settings(max_examples=30)
def test_random_ids_use_only_the_alphabet_and_length(length, alphabet):
    made = random_id(length, alphabet)
    assert len(made) == length and set(made) <= set(alphabet)


@pytest.mark.parametrize("change, problem", [
    ({"id_min_length": 0}, "id_min_length"),
    ({"id_min_length": 9, "id_max_length": 8}, "id_max_length"),
    ({"id_max_length": 65}, "64"),
    ({"generated_length": 40}, "generated_length"),
    ({"generated_alphabet": "aA"}, "repeat"),
    ({"generated_alphabet": "A"}, "at least 2"),
    ({"generated_alphabet": "AB-"}, "A-Z"),
])
def test_inconsistent_policies_are_refused_naming_the_rule(change, problem):
    with pytest.raises(RuleViolation) as caught:
        validate_policy(Policy(**{**Policy().__dict__, **change}))
    assert caught.value.code == "invalid_policy" and problem in caught.value.message


def test_tokens_are_long_random_and_hashed():
    token = new_token()
    assert len(token) >= 43 and token != new_token()
    assert hash_secret(token) != token and len(hash_secret(token)) == 64


def test_enrolment_codes_ignore_case_dashes_and_spaces():
    code = new_enrolment_code()
    assert len(code) == 14 and code.count("-") == 2
    assert normalise_enrolment_code(code.lower().replace("-", " ")) == normalise_enrolment_code(code)


def test_cursors_are_full_sync_or_delta_sequence_numbers():
    assert parse_cursor(None) == RosterCursor(0, full=True)
    assert parse_cursor("42") == RosterCursor(42, full=False) and parse_cursor("f42") == RosterCursor(42, full=True)
    assert str(RosterCursor(7, full=True)) == "f7" and str(RosterCursor(7, full=False)) == "7"
    for bad in ("-1", "abc", "1" * 19, "f", "x42", "f-1", "٤٢"):
        with pytest.raises(InvalidRequest):
            parse_cursor(bad)


def test_times_are_stored_in_utc_and_naive_times_refused():
    assert canonical_time("2025-03-01T10:00:00+01:00") == "2025-03-01T09:00:00.000000Z"
    assert canonical_time("2025-03-01T09:00:00z") == "2025-03-01T09:00:00.000000Z"
    for bad in ("2025-03-01T09:00:00", "yesterday"):
        with pytest.raises(InvalidRequest):
            canonical_time(bad)
