"""The `online` decision policy: the roster is refreshed from the server before each decision (within its time
budget), and the roster alone decides, marked offline, when the server does not answer."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from daemon.bootstrap import make_reader
from daemon.settings import CheckinSettings, DecisionPolicy

from .run_support import DEMO_ROSTER_SIZE, MEMBER, RecordingFeedback, fake_scanners, reader_settings, until


def online_reader(site, tmp_path, feedback):
    settings = reader_settings(str(tmp_path / "state"), site.url, site.token_file)
    online = CheckinSettings(policy=DecisionPolicy.ONLINE, online_timeout_ms=2000.0)
    return make_reader(replace(settings, checkin=online), feedback, fake_scanners)


def test_a_member_added_after_the_last_sync_is_let_in_at_once_online_and_the_roster_decides_offline(site, tmp_path):
    feedback = RecordingFeedback()

    async def scenario():
        reader = online_reader(site, tmp_path, feedback)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            [newcomer] = site.add_clients(1, prefix="NEW")  # registered at the desk a moment ago
            site.set_status("M1002", "inactive")  # and one membership ended
            scanner = reader.scanners[0]
            scanner.scan(newcomer)
            scanner.scan("M1002")
            await until(lambda: len(feedback.decisions) == 2, what="two online decisions")
            site.stop()
            scanner.scan(MEMBER)
            await until(lambda: len(feedback.decisions) == 3, timeout=15, what="the offline decision")
        finally:
            await reader.close()
        return newcomer

    newcomer = asyncio.run(scenario())
    assert feedback.outcomes() == [(newcomer, "accepted", False), ("M1002", "denied_inactive", False),
                                   (MEMBER, "accepted", True)]
