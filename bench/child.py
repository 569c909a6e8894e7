"""The measured workloads, each run in a fresh process so that its CPU time and peak memory are its own:
`python -m bench.child WORKLOAD 'JSON parameters'` prints one JSON object of figures as its last line.

The reference server is always another process (bench.server_process); these talk to it over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time

from bench.seed import client_id
from bench.stats import peak_rss_kb, proc_status, summary

SCANNER = "bench"


def _settings(params: dict):
    from daemon.settings import ServerSettings, Settings, StateSettings, StdinScannerSettings, SyncSettings

    server = ServerSettings(url=params.get("url", ""), token_file=params.get("token_file", ""))
    # No start-up jitter: the first sync starts at once, so it is over before anything is measured.
    sync = SyncSettings(jitter_s=0.0, page_size=params.get("page_size", SyncSettings.page_size))
    return Settings(source="<bench>", scanners=(StdinScannerSettings(name=SCANNER),), server=server,
                    state=StateSettings(dir=params["state_dir"]), sync=sync)


def roster_sync(params: dict) -> dict:
    """`tagd sync` without a daemon (bootstrap.sync_roster_now): full or delta, whatever the roster needs."""
    # Imported before the clock starts: in the running daemon they are, and no sync pays for them there.
    from daemon import bootstrap, roster, rostersync  # noqa: F401
    from daemon.api_client import ServerClient

    settings = _settings(params)
    fetching = _timed_method(ServerClient, "roster_page")  # attribution only: requests + reply parsing
    baseline_kb = proc_status()["VmRSS"]
    cpu, start = time.process_time(), time.perf_counter()
    report = bootstrap.sync_roster_now(settings)
    seconds = time.perf_counter() - start
    return {"kind": report.kind, "entries": report.entries, "size": report.size, "seconds": seconds,
            "fetch_s": fetching["seconds"], "pages": fetching["calls"], "cpu_s": time.process_time() - cpu,
            "peak_rss_kb": peak_rss_kb(), "vmhwm_kb": proc_status()["VmHWM"], "baseline_rss_kb": baseline_kb}


def _timed_method(cls, name: str) -> dict:
    """Wrap cls.name so that its calls and their total wall time are counted in the returned dict."""
    totals = {"calls": 0, "seconds": 0.0}
    method = getattr(cls, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals["calls"] += 1
            totals["seconds"] += time.perf_counter() - start

    setattr(cls, name, timed)
    return totals


def scan_ids(size: int, count: int, rng: random.Random) -> list[str]:
    """Distinct IDs as members scan them: mostly known (some read in lower case), a tenth unknown."""
    known = rng.sample(range(size), min(size, count))
    ids = []
    for index, number in enumerate(known):
        if index % 10 == 9:
            ids.append(f"U{number:07X}")
        else:
            ids.append(client_id(number).lower() if index % 20 == 3 else client_id(number))
    return ids


class _TimedFeedback:
    """Feedback that notes when each decision is shown (the member sees the light: the end of the scan path)."""

    def __init__(self) -> None:
        self.shown: asyncio.Future | None = None
        self.outcomes: dict[str, int] = {}

    def show(self, decision) -> None:
        self.outcomes[decision.outcome.value] = self.outcomes.get(decision.outcome.value, 0) + 1
        self.shown.set_result(time.perf_counter())

    def fault(self, message: str) -> None:
        self.shown.set_exception(RuntimeError(message))


class _InjectedScanner:
    """Stands in for a driver: the bench hands frames straight to the reader's sink."""

    def __init__(self, settings, sink, on_status):
        self.name, self.sink = settings.name, sink
        self._closed = asyncio.Event()

    async def run(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        self._closed.set()


def scan_path(params: dict) -> dict:
    return asyncio.run(_scan_path(params))


async def _scan_path(params: dict) -> dict:
    """Frame → pipeline → roster lookup → decision → outbox commit (fsync) → feedback, via a real Reader."""
    from daemon import bootstrap
    from daemon.scan import Frame
    from daemon.service import Reader

    settings = _settings(params)
    feedback = _TimedFeedback()
    token = params.get("token")
    reader = Reader(settings, feedback, bootstrap.client_factory(settings, token), _InjectedScanner)
    reader.start()
    if reader.sync:
        await reader.sync.sync_once()  # the start-up sync, out of the way (delivery runs on: that is the point)
    loop = asyncio.get_running_loop()
    latencies = []
    ids = scan_ids(params["size"], params["scans"], random.Random(1))
    cpu = time.process_time()
    for text in ids:
        feedback.shown = loop.create_future()
        start = time.perf_counter()
        reader.desk.submit(Frame(SCANNER, "bench", text, time.time()))
        latencies.append(await feedback.shown - start)
        await asyncio.sleep(params.get("gap_s", 0))
    cpu_per_scan = (time.process_time() - cpu) / len(ids)
    lookups = _lookups(reader.roster, params["size"], params.get("lookups", 0))
    await reader.close()
    return {"latency_ms": summary(latencies, 1e3), "cpu_ms_per_scan": cpu_per_scan * 1e3,
            "outcomes": feedback.outcomes, "lookup_us": lookups}


def _lookups(roster, size: int, count: int) -> dict | None:
    """RosterCache.lookup alone, half known IDs and half unknown, each timed on its own."""
    if not count:
        return None
    rng = random.Random(2)
    ids = [client_id(rng.randrange(size)) if n % 2 else f"U{rng.randrange(size):07X}" for n in range(count)]
    timings = []
    clock = time.perf_counter_ns
    for text in ids:
        start = clock()
        roster.lookup(text)
        timings.append(clock() - start)
    return summary(timings, 1e-3)


def pipeline_cpu(params: dict) -> dict:
    """CPU of the pure core per HID scan: evdev key events → KeyDecoder → HidFramer → ScanPipeline → decide.

    The events are real evdev.InputEvent objects, as the kernel's keyboard reports them, made before timing.
    """
    from daemon.decision import decide
    from daemon.framing import HidFramer
    from daemon.keys import KeyDecoder, key_events_for
    from daemon.pipeline import ScanPipeline
    from daemon.settings import HidScannerSettings, ScanSettings

    hid = HidScannerSettings(name=SCANNER)
    decoder = KeyDecoder(hid.layout)
    framer = HidFramer(SCANNER, "event0", hid.terminators, hid.frame_timeout_ms / 1000)
    pipeline = ScanPipeline(ScanSettings(), {SCANNER: hid.rules})
    ids = scan_ids(params["size"], params["scans"], random.Random(3))
    scans = [key_events_for(text, start=1_700_000_000 + 10.0 * n, gap_ms=2.0) for n, text in enumerate(ids)]
    statuses = {text: "active" for text in ids[::2]}
    decided = 0
    cpu = time.process_time()
    for events in scans:
        for event in events:
            frame = framer.feed(decoder.feed(event))
            if frame is not None:
                scan = pipeline.process(frame)
                decided += decide(scan, statuses.get(scan.client_id or ""), False).is_checkin
    seconds = time.process_time() - cpu
    return {"cpu_ms_per_scan": seconds / len(scans) * 1e3, "scans": len(scans), "checkins": decided,
            "events_per_scan": sum(map(len, scans)) / len(scans)}


def drain(params: dict) -> dict:
    return asyncio.run(_drain(params))


async def _drain(params: dict) -> dict:
    """A backlog of check-ins recorded while offline, delivered to the server by the DeliveryWorker."""
    from daemon import bootstrap
    from daemon.connectivity import Connectivity
    from daemon.delivery import DeliveryWorker
    from daemon.outbox import CheckinEvent, Outbox
    from daemon.workers import WorkerThread

    settings = _settings(params)
    outbox = Outbox(f"{params['state_dir']}/outbox.db")
    at = time.time() - 3600
    for n, text in enumerate(scan_ids(params["size"], params["backlog"], random.Random(4))):
        outbox.record(CheckinEvent.new(text, SCANNER, at + n, "accepted", True, "accepted"))
    thread = WorkerThread("bench-delivery")
    client = bootstrap.client_factory(settings, params["token"])()
    worker = DeliveryWorker(outbox, client, settings.delivery, Connectivity(), thread)
    task = asyncio.create_task(worker.run())
    cpu, start = time.process_time(), time.perf_counter()
    worker.wake()
    while worker.delivered < params["backlog"]:
        if task.done():
            task.result()  # re-raises what stopped it
        await asyncio.sleep(0.005)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    left = outbox.depth()
    task.cancel()
    thread.shutdown()
    client.close()
    outbox.close()
    return {"seconds": seconds, "cpu_s": cpu, "delivered": worker.delivered, "left": left,
            "batch_size": settings.delivery.batch_size}


def startup(params: dict) -> dict:
    """In one process: importing the daemon, then make_reader + start (stores opened, workers and scanners up)."""
    start = time.perf_counter()
    from daemon import bootstrap, service  # noqa: F401  (the import time is what is measured)

    imported = time.perf_counter()

    async def ready() -> tuple[float, int]:
        begin = time.perf_counter()
        reader = bootstrap.make_reader(_settings(params), None, _InjectedScanner)
        reader.start()
        seconds = time.perf_counter() - begin
        size = reader.roster.size()
        await reader.close()
        return seconds, size

    seconds, size = asyncio.run(ready())
    return {"import_s": imported - start, "reader_s": seconds, "roster_size": size}


WORKLOADS = {"roster-sync": roster_sync, "scan-path": scan_path, "pipeline-cpu": pipeline_cpu, "drain": drain,
             "startup": startup}

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(WORKLOADS[sys.argv[1]](json.loads(sys.argv[2]))))
