"""The scan pipeline: a framed scan in, one outcome value out. Pure apart from the debounce memory it owns."""

from __future__ import annotations

from collections.abc import Mapping

from .debounce import Debouncer
from .scan import Frame, Kind, Reason, ScanResult
from .settings import FramingRules, ScanSettings
from .validate import check_client_id, looks_typed, strip_framing


class ScanPipeline:
    """Turns frames from any scanner into `valid`, `invalid(reason)`, `typed` or `duplicate` results."""

    def __init__(self, scan: ScanSettings, rules_by_scanner: Mapping[str, FramingRules]):
        self.scan = scan
        self.rules_by_scanner = dict(rules_by_scanner)
        self.debouncer = Debouncer(scan.debounce_seconds)

    def process(self, frame: Frame) -> ScanResult:
        rules = self.rules_by_scanner.get(frame.scanner, FramingRules())
        if frame.error is not None:
            return self._result(frame, Kind.INVALID, reason=Reason(frame.error))
        if looks_typed(frame.gaps_ms, rules.typed_threshold_ms):
            return self._result(frame, Kind.TYPED, reason=Reason.TYPED)
        text, reason = strip_framing(frame.text, rules)
        client_id, reason = (None, reason) if reason else check_client_id(text, self.scan)
        if client_id is None:
            return self._result(frame, Kind.INVALID, reason=reason)
        if self.debouncer.is_duplicate(client_id, frame.at):
            return self._result(frame, Kind.DUPLICATE, client_id, Reason.DUPLICATE)
        return self._result(frame, Kind.VALID, client_id)

    @staticmethod
    def _result(frame: Frame, kind: Kind, client_id: str | None = None, reason: Reason | None = None) -> ScanResult:
        return ScanResult(kind, frame.scanner, frame.device, frame.text, frame.at, client_id, reason)
