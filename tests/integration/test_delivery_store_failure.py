"""The delivery worker outlives a failing outbox (a full disk cannot be made here: the first read raises the same
StoreError the real one would), and delivers everything once the outbox works again."""

from __future__ import annotations

import asyncio

from daemon.api_client import ServerClient
from daemon.connectivity import Connectivity
from daemon.delivery import DeliveryWorker
from daemon.errors import StoreError
from daemon.outbox import CheckinEvent, Outbox
from daemon.settings import DeliverySettings, ServerSettings
from daemon.workers import WorkerThread

from .run_support import MEMBER, Site, until


class FailingOnceOutbox(Outbox):
    def __init__(self, path: str):
        super().__init__(path)
        self.failures = 0

    def pending(self, limit: int):
        if self.failures == 0:
            self.failures += 1
            raise StoreError("outbox.db: disk I/O error (simulated)")
        return super().pending(limit)


def test_delivery_survives_an_outbox_failure_and_delivers_afterwards(tmp_path, caplog):
    site = Site(str(tmp_path))
    outbox = FailingOnceOutbox(str(tmp_path / "outbox.db"))
    events = [CheckinEvent.new(cid, "door", 1_750_000_000.0 + i, "accepted", False, "accepted")
              for i, cid in enumerate([MEMBER, "M1002"])]
    for event in events:
        outbox.record(event)
    thread = WorkerThread("test-delivery")

    async def scenario():
        client = ServerClient(ServerSettings(url=site.url), site.token)
        worker = DeliveryWorker(outbox, client, DeliverySettings(backoff_initial_s=0.05, backoff_max_s=0.1),
                                Connectivity(), thread)
        task = asyncio.create_task(worker.run())
        worker.wake()
        try:
            await until(lambda: outbox.depth() == 0, what="delivery after the failure")
        finally:
            task.cancel()
            client.close()
        return task

    try:
        task = asyncio.run(scenario())
        assert task.cancelled()  # it was still running: the failure did not end it
        assert outbox.failures == 1 and "delivery paused: the outbox failed" in caplog.text
        assert [c["event_id"] for c in site.checkins()] == [e.event_id for e in events]
    finally:
        thread.shutdown()
        outbox.close()
        site.stop()
