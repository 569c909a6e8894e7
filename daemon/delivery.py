"""Delivery: the outbox goes to the server in order, in batches, each event with its original event_id, forever.

Network work runs in a worker thread (`executor`); the event loop only schedules. Failures back off (capped
exponential, full jitter, Retry-After honoured); a rejected token stops delivery until a reload, keeping the queue;
an event the server can never accept is moved to the dead letters with the reason, never retried forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timezone

from . import api_types
from .backoff import Backoff
from .connectivity import Connectivity
from .errors import AuthRejected, RequestRejected, ServerError, StoreError
from .outbox import CheckinEvent, Outbox
from .privacy import server_message_for_log
from .settings import DeliverySettings

log = logging.getLogger("tagd.delivery")

DEAD_RESULTS = {"conflict"}  # the event_id is already stored with other content: resending can never help


def to_wire(event: CheckinEvent) -> api_types.CheckinEvent:
    scanned_at = datetime.fromtimestamp(event.scanned_at, timezone.utc)
    return api_types.CheckinEvent(event.event_id, event.client_id, scanned_at, event.decision, event.offline)


class DeliveryWorker:
    def __init__(self, outbox: Outbox, client, settings: DeliverySettings, connectivity: Connectivity,
                 executor: Executor, backoff: Backoff | None = None, on_change: Callable[[], None] = lambda: None):
        """`on_change` is called on the loop after every attempt: the queue or the server's state may differ."""
        self.outbox, self.client, self.settings = outbox, client, settings
        self.connectivity, self.executor, self.on_change = connectivity, executor, on_change
        self.backoff = backoff or Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._wake = asyncio.Event()
        self.delivered = 0

    def wake(self) -> None:
        """A new event was recorded: send it now unless we are backing off."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.connectivity.auth_rejected is None and await self._deliver_one_batch():
                self.on_change()
            self.on_change()

    async def _deliver_one_batch(self) -> bool:
        """Send the oldest batch. True when there may be more to send right away."""
        try:
            batch = await self._in_worker(self.outbox.pending, self.settings.batch_size)
            if not batch:
                return False
            await self._send(batch)
        except StoreError as exc:
            # The outbox could not be read or updated (disk full, I/O error). The events stay where they are;
            # delivery must not end for it, so wait and try again (a resend is answered `duplicate`).
            delay = self.backoff.next_delay()
            log.error("delivery paused: the outbox failed (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            return True
        except AuthRejected as exc:
            self.connectivity.failed(exc)
            log.error("delivery stopped, %d check-ins kept queued: the server rejected the token (%s)",
                      self.outbox.depth(), exc)
            return False
        except ServerError as exc:
            self.connectivity.failed(exc)
            delay = self.backoff.next_delay(getattr(exc, "retry_after", None))
            log.info("delivery failed (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            return True
        self.backoff.reset()
        return True

    async def _send(self, batch: Sequence[CheckinEvent]) -> None:
        try:
            results = await self._in_worker(self.client.send_checkins, [to_wire(e) for e in batch])
        except RequestRejected as exc:
            if len(batch) == 1:
                await self._bury(batch[0], f"rejected by the server: {exc}")
                return
            # Some event in the batch is malformed; halve until the culprit is alone, delivering the rest.
            middle = len(batch) // 2
            await self._send(batch[:middle])
            await self._send(batch[middle:])
            return
        self.connectivity.succeeded()
        await self._record(results)

    async def _record(self, results: Sequence[api_types.EventResult]) -> None:
        done = [(r.event_id, str(r.result), r.message) for r in results if str(r.result) not in DEAD_RESULTS]
        for r in results:
            if str(r.result) in DEAD_RESULTS:
                await self._bury_id(r.event_id, f"{r.result}: {server_message_for_log(r.message or '')}")
        self.delivered += await self._in_worker(self.outbox.mark_results, done)

    async def _bury(self, event: CheckinEvent, reason: str) -> None:
        await self._bury_id(event.event_id, reason)

    async def _bury_id(self, event_id: str, reason: str) -> None:
        log.error("check-in %s moved to dead letters: %s", event_id, reason)
        await self._in_worker(self.outbox.dead_letter, event_id, reason)

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
