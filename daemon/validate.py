"""From a frame's raw text to a client ID: strip what the scanner adds, then check the client-ID rules. Pure."""

from __future__ import annotations

import re
import statistics

from .scan import Reason
from .settings import CasePolicy, FramingRules, ScanSettings

# AIM symbology identifier: ']' + symbology code character + modifier character, e.g. ']C0' (Code 128), ']A0' (Code 39)
_AIM_ID = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_ALNUM = re.compile(r"[A-Za-z0-9]+")


def looks_typed(gaps_ms: tuple[float, ...], threshold_ms: float | None) -> bool:
    """True when the keystrokes came at a person's pace rather than a scanner's.

    The median gap is used so that one late USB poll inside a real scan cannot make it look typed.
    """
    if threshold_ms is None or not gaps_ms:
        return False
    return statistics.median(gaps_ms) > threshold_ms


def strip_framing(text: str, rules: FramingRules) -> tuple[str, Reason | None]:
    """Remove the configured prefix, an AIM identifier and the configured suffix, in the order scanners send them."""
    if rules.prefix:
        if not text.startswith(rules.prefix):
            return text, Reason.MISSING_PREFIX
        text = text[len(rules.prefix):]
    if rules.strip_aim and _AIM_ID.match(text):
        text = text[3:]
    if rules.suffix:
        if not text.endswith(rules.suffix):
            return text, Reason.MISSING_SUFFIX
        text = text[: -len(rules.suffix)]
    return text, None


def check_client_id(text: str, scan: ScanSettings) -> tuple[str | None, Reason | None]:
    """Apply the client-ID rules: alphanumeric only, within the length bounds; then the case policy."""
    if not text:
        return None, Reason.EMPTY
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        return None, Reason.CONTROL_CHARACTERS
    if not _ALNUM.fullmatch(text):
        return None, Reason.NOT_ALPHANUMERIC
    if len(text) < scan.min_length:
        return None, Reason.TOO_SHORT
    if len(text) > scan.max_length:
        return None, Reason.TOO_LONG
    return apply_case(text, scan.case), None


def apply_case(text: str, policy: CasePolicy) -> str:
    if policy is CasePolicy.UPPER:
        return text.upper()
    if policy is CasePolicy.LOWER:
        return text.lower()
    return text
