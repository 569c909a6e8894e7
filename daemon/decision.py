"""The check-in decision: a scan result and what the roster says → the outcome the member sees. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .scan import Kind, ScanResult
from .settings import UnknownWhileOffline


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DENIED_INACTIVE = "denied_inactive"
    DENIED_UNKNOWN = "denied_unknown"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    TYPED = "typed"


_NOT_A_CHECKIN = {Kind.DUPLICATE: Outcome.DUPLICATE, Kind.INVALID: Outcome.INVALID, Kind.TYPED: Outcome.TYPED}


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    offline: bool  # decided without the server's word: it was unreachable at the time
    scan: ScanResult

    @property
    def is_checkin(self) -> bool:
        """Whether this decision is recorded and delivered to the server (valid scans, let in or not)."""
        return self.scan.kind is Kind.VALID

    @property
    def server_decision(self) -> str:
        """The contract's two-valued decision for a check-in event."""
        return "accepted" if self.outcome is Outcome.ACCEPTED else "rejected"


def decide(scan: ScanResult, roster_status: str | None, offline: bool,
           unknown_offline: UnknownWhileOffline = UnknownWhileOffline.DENY) -> Decision:
    """Decide from the local roster. `roster_status` is 'active', 'inactive' or None (not in the roster).

    An ID unknown to the roster is let in only while offline and only when the business chose `accept`: the
    roster may simply be older than the member's registration, and the server records the event either way.
    """
    if scan.kind in _NOT_A_CHECKIN:
        return Decision(_NOT_A_CHECKIN[scan.kind], offline, scan)
    if roster_status == "active":
        return Decision(Outcome.ACCEPTED, offline, scan)
    if roster_status == "inactive":
        return Decision(Outcome.DENIED_INACTIVE, offline, scan)
    if offline and unknown_offline is UnknownWhileOffline.ACCEPT:
        return Decision(Outcome.ACCEPTED, offline, scan)
    return Decision(Outcome.DENIED_UNKNOWN, offline, scan)
