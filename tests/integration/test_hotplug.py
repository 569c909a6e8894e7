"""The inotify watcher on a temporary directory playing /dev/input, read on a real event loop."""

from __future__ import annotations

import asyncio
import os

import pytest
from inotify_simple import Event, flags

from drivers.hotplug import Change, InputWatcher

WAIT = 5.0


class Changes:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Change, str]] = asyncio.Queue()

    def __call__(self, change: Change, path: str) -> None:
        self.queue.put_nowait((change, path))

    async def next(self) -> tuple[Change, str]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


@pytest.fixture
def input_dir(tmp_path) -> str:
    path = tmp_path / "input"
    path.mkdir()
    return str(path)


def watching(input_dir: str, changes) -> InputWatcher:
    watcher = InputWatcher(changes, (input_dir, os.path.join(input_dir, "by-id")))
    watcher.start()
    return watcher


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_node_created_chmodded_and_removed_is_reported_in_order(input_dir):
    node = os.path.join(input_dir, "event3")

    async def scenario():
        changes = Changes()
        watcher = watching(input_dir, changes)
        open(node, "w").close()
        os.chmod(node, 0o660)
        os.unlink(node)
        got = [await changes.next() for _ in range(3)]
        watcher.close()
        assert got == [(Change.ADDED, node), (Change.CHANGED, node), (Change.REMOVED, node)]

    run(scenario)


def test_by_id_directory_created_later_is_rescanned_then_watched(input_dir):
    by_id = os.path.join(input_dir, "by-id")

    async def scenario():
        changes = Changes()
        watcher = watching(input_dir, changes)
        assert watcher.watched == {input_dir}
        os.mkdir(by_id)
        os.symlink("../event1", os.path.join(by_id, "early-link"))  # before the watch can exist: rescan finds it
        assert await changes.next() == (Change.RESCAN, by_id)
        os.symlink("../event2", os.path.join(by_id, "late-link"))
        assert await changes.next() == (Change.ADDED, os.path.join(by_id, "late-link"))
        assert watcher.watched == {input_dir, by_id}
        watcher.close()

    run(scenario)


def test_by_id_directory_removed_and_recreated_is_watched_again(input_dir):
    by_id = os.path.join(input_dir, "by-id")
    os.mkdir(by_id)

    async def scenario():
        changes = Changes()
        watcher = watching(input_dir, changes)
        os.rmdir(by_id)  # udev removes it with the last device that had a link
        await asyncio.wait_for(_until(lambda: watcher.watched == {input_dir}), WAIT)
        os.mkdir(by_id)
        assert await changes.next() == (Change.RESCAN, by_id)
        os.symlink("../event4", os.path.join(by_id, "link"))
        assert await changes.next() == (Change.ADDED, os.path.join(by_id, "link"))
        watcher.close()

    run(scenario)


def test_whole_input_directory_missing_at_start_is_waited_for(tmp_path):
    input_dir = str(tmp_path / "dev" / "input")

    async def scenario():
        changes = Changes()
        watcher = watching(input_dir, changes)
        assert watcher.watched == frozenset()
        os.makedirs(input_dir)
        assert await changes.next() == (Change.RESCAN, input_dir)
        open(os.path.join(input_dir, "event0"), "w").close()
        assert await changes.next() == (Change.ADDED, os.path.join(input_dir, "event0"))
        watcher.close()

    run(scenario)


def test_queue_overflow_asks_for_a_rescan(input_dir):
    async def scenario():
        changes = Changes()
        watcher = watching(input_dir, changes)
        watcher._dispatch(Event(wd=-1, mask=flags.Q_OVERFLOW, cookie=0, name=""))  # the kernel's overflow event
        assert await changes.next() == (Change.RESCAN, "")
        watcher.close()

    run(scenario)


def test_watcher_survives_a_callback_that_raises(input_dir):
    async def scenario():
        changes = Changes()
        failures = []

        def flaky(change: Change, path: str) -> None:
            if not failures:
                failures.append(path)
                raise OSError(24, "Too many open files")
            changes(change, path)

        watcher = watching(input_dir, flaky)
        open(os.path.join(input_dir, "event1"), "w").close()
        open(os.path.join(input_dir, "event2"), "w").close()
        assert await changes.next() == (Change.ADDED, os.path.join(input_dir, "event2"))
        assert failures == [os.path.join(input_dir, "event1")]
        watcher.close()

    run(scenario)


def test_close_twice_is_harmless_and_frees_the_inotify_fd(input_dir):
    async def scenario():
        before = len(os.listdir("/proc/self/fd"))
        watcher = watching(input_dir, Changes())
        assert len(os.listdir("/proc/self/fd")) == before + 1
        watcher.close()
        watcher.close()
        assert len(os.listdir("/proc/self/fd")) == before
        open(os.path.join(input_dir, "event1"), "w").close()  # nothing reads it, nothing fails

    run(scenario)


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.001)
