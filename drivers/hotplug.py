"""Hotplug: inotify on the input directories, read on the event loop through `loop.add_reader` (no threads).

The watcher only reports what changed; the driver decides what a change means. Rules it follows:
- Watches are added before anyone lists the directory (call `start()`, then enumerate), so a device plugged in
  between is reported rather than lost.
- A directory that does not exist yet (`/dev/input/by-id` appears with the first keyboard-ish device; udev removes
  it again with the last) is waited for on its nearest existing ancestor. When it appears it is watched and a
  RESCAN is reported, because nodes may have been created in it before the watch was in place.
- ATTRIB is reported as CHANGED: udev creates the node first and sets its group and mode a moment later, so an
  open that failed with EACCES should be retried then.
- A queue overflow (IN_Q_OVERFLOW) means events were lost: a RESCAN is reported.
- One event that cannot be handled (or a callback that raises) is logged and the next event is read as usual.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from enum import StrEnum

from inotify_simple import INotify
from inotify_simple import Event as InotifyEvent
from inotify_simple import flags

log = logging.getLogger("tagd.hotplug")

DEFAULT_DIRECTORIES = ("/dev/input", "/dev/input/by-id")


class Change(StrEnum):
    ADDED = "added"  # created or moved in
    REMOVED = "removed"  # deleted or moved out
    CHANGED = "changed"  # attributes changed (permissions set by udev after the node appeared)
    RESCAN = "rescan"  # events may have been missed: list the directories again (path: the directory, or '')


ChangeSink = Callable[[Change, str], None]

_CONTENT_MASK = (flags.CREATE | flags.DELETE | flags.ATTRIB | flags.MOVED_TO | flags.MOVED_FROM
                 | flags.DELETE_SELF | flags.MOVE_SELF | flags.ONLYDIR)
_AWAIT_CHILD_MASK = flags.CREATE | flags.MOVED_TO | flags.ONLYDIR  # on an ancestor of a directory not there yet
_APPEARED = flags.CREATE | flags.MOVED_TO
_DISAPPEARED = flags.DELETE | flags.MOVED_FROM
_WATCH_GONE = flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF


class InputWatcher:
    """Reports added/removed/changed entries of `directories` to `on_change(change, path)` on the event loop."""

    def __init__(self, on_change: ChangeSink, directories: Sequence[str] = DEFAULT_DIRECTORIES):
        self.on_change = on_change
        self.directories = tuple(os.path.abspath(d) for d in directories)
        self._inotify: INotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paths_by_wd: dict[int, str] = {}
        self._watched_directories: set[str] = set()  # those of self.directories that have a content watch

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Add the watches and start reading. Enumerate existing nodes only after this returns."""
        if self._inotify is not None:
            return
        self._loop = loop or asyncio.get_running_loop()
        self._inotify = INotify(nonblocking=True)
        self._arm(report_new=False)
        self._loop.add_reader(self._inotify.fileno(), self._on_readable)

    def close(self) -> None:
        """Stop watching. Safe to call more than once."""
        inotify, self._inotify = self._inotify, None
        if inotify is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(inotify.fileno())
        inotify.close()
        self._paths_by_wd.clear()
        self._watched_directories.clear()

    @property
    def watched(self) -> frozenset[str]:
        """The wanted directories being watched right now (the others are waited for)."""
        return frozenset(self._watched_directories)

    def _on_readable(self) -> None:
        if self._inotify is None:
            return
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            log.exception("hotplug: reading inotify events failed")
            return
        for event in events:
            try:
                self._dispatch(event)
            except Exception:  # noqa: BLE001 - one bad event must never end hotplug for every scanner
                log.exception("hotplug: could not handle %s", event)

    def _dispatch(self, event: InotifyEvent) -> None:
        if event.mask & flags.Q_OVERFLOW:
            log.warning("hotplug: inotify queue overflowed; rescanning")
            self.on_change(Change.RESCAN, "")
            return
        directory = self._paths_by_wd.get(event.wd)
        if directory is None:
            return  # a watch removed a moment ago still had events queued
        if event.mask & _WATCH_GONE:
            self._forget(event.wd, directory)
            return
        path = os.path.join(directory, event.name)
        if event.mask & flags.ISDIR:
            if event.mask & _APPEARED and self._awaited(path):
                self._arm(report_new=True)
            return
        if directory in self._watched_directories:
            self._report_entry(event.mask, path)

    def _report_entry(self, mask: int, path: str) -> None:
        if mask & _APPEARED:
            self.on_change(Change.ADDED, path)
        elif mask & _DISAPPEARED:
            self.on_change(Change.REMOVED, path)
        elif mask & flags.ATTRIB:
            self.on_change(Change.CHANGED, path)

    def _awaited(self, path: str) -> bool:
        """Is `path` one of the wanted directories, or on the way to one that is not watched yet?"""
        return any(d == path or d.startswith(path + os.sep)
                   for d in self.directories if d not in self._watched_directories)

    def _forget(self, wd: int, directory: str) -> None:
        """A watched directory was deleted or moved: drop its watch and wait for it to come back."""
        self._paths_by_wd.pop(wd, None)
        self._watched_directories.discard(directory)
        if self._inotify is not None:
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # IN_IGNORED: the kernel already removed it
            self._arm(report_new=True)

    def _arm(self, report_new: bool) -> None:
        """(Re)place every watch: content watches on existing directories, creation watches on ancestors."""
        wanted: dict[str, int] = {}
        for directory in self.directories:
            if os.path.isdir(directory):
                wanted[directory] = wanted.get(directory, 0) | _CONTENT_MASK
            else:
                ancestor = _nearest_existing_ancestor(directory)
                wanted[ancestor] = wanted.get(ancestor, 0) | _AWAIT_CHILD_MASK
        newly_watched = [d for d in self._place_watches(wanted) if d in self.directories]
        for directory in newly_watched if report_new else ():
            self.on_change(Change.RESCAN, directory)

    def _place_watches(self, wanted: dict[str, int]) -> list[str]:
        assert self._inotify is not None
        newly_watched: list[str] = []
        paths_by_wd: dict[int, str] = {}
        for path, mask in wanted.items():
            try:
                wd = self._inotify.add_watch(path, mask)
            except OSError as exc:  # vanished again, or not ours to read: wait on its ancestor next time round
                log.warning("hotplug: cannot watch %s: %s", path, exc.strerror)
                continue
            paths_by_wd[wd] = path
            if mask & flags.DELETE and path not in self._watched_directories:
                self._watched_directories.add(path)
                newly_watched.append(path)
        for wd in self._paths_by_wd.keys() - paths_by_wd.keys():
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # already gone with its directory
        self._paths_by_wd = paths_by_wd
        return newly_watched


def _nearest_existing_ancestor(path: str) -> str:
    parent = os.path.dirname(path)
    while parent != os.path.dirname(parent) and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    return parent
