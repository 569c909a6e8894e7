"""A one-thread executor whose thread never holds up the process exit.

Blocking HTTP and long SQLite work run here, off the event loop. A request in flight when tagd is told to stop
may take up to its read timeout; the daemon waits a moment for it, then exits anyway. That is safe: the outbox
commit that marks events delivered is one transaction, so an interrupted one is as if never begun, and the events
are sent again (the server answers `duplicate`).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future


class WorkerThread(Executor):
    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None) -> None:
        self._jobs.put(None)
        if wait:
            self._thread.join(timeout)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting coroutine, which decides
                future.set_exception(exc)
