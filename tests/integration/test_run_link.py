"""Link mode end to end in the real reader: staff pick a client at the desk, press the button, scan a tag, and
the next scan of that tag checks the client in (reference server on loopback, fake button and scanner)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from daemon.bootstrap import make_reader
from daemon.gestures import Gesture
from daemon.linkmode import State
from daemon.settings import ButtonSettings

from .run_support import DEMO_ROSTER_SIZE, MEMBER, RecordingFeedback, fake_scanners, reader_settings, until


def linking_reader(site, tmp_path, feedback):
    settings = reader_settings(str(tmp_path / "state"), site.url, site.token_file)
    return make_reader(replace(settings, button=ButtonSettings(kind="fake")), feedback, fake_scanners)


def test_a_tag_linked_at_the_desk_checks_that_client_in_on_its_next_scan(site, tmp_path):
    nina = site.office("POST", "/v1/clients", json={"name": "Nina Walk-in"}).json()
    feedback = RecordingFeedback()

    async def scenario():
        reader = linking_reader(site, tmp_path, feedback)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            reply = site.office("PUT", f"/v1/devices/{site.device_id}/link-target", json={"client_ref": nina["ref"]})
            assert reply.status_code == 200, reply.text
            reader.panel.button.press()
            await until(lambda: reader.panel.link.machine.state is State.AWAIT_TAG, what="the desk's choice")
            scanner = reader.scanners[0]
            scanner.scan("TAG5150")
            await until(lambda: "linked" in feedback.signals, what="the link")
            assert not reader.panel.link.is_active and feedback.decisions == []  # the link scan is no check-in
            scanner.scan("TAG5150")
            await until(lambda: len(feedback.decisions) == 1, what="the check-in")
            await until(lambda: reader.outbox.depth() == 0, what="delivery")
        finally:
            await reader.close()

    asyncio.run(scenario())
    assert feedback.signals[:1] == ["link-mode-on"] and feedback.signals[-2:] == ["link-mode-off", "linked"]
    assert feedback.outcomes() == [("TAG5150", "accepted", False)]
    [checkin] = site.checkins()
    assert (checkin["client_id"], checkin["client_ref"], checkin["result"]) == ("TAG5150", nina["ref"], "accepted")


def test_scans_in_link_mode_are_never_checked_in_and_a_long_press_cancels(site, tmp_path):
    feedback = RecordingFeedback()

    async def scenario():
        reader = linking_reader(site, tmp_path, feedback)
        reader.start()
        try:
            await until(lambda: reader.roster.size() == DEMO_ROSTER_SIZE, what="the first roster sync")
            reader.panel.button.press()
            await until(lambda: reader.panel.link.machine.state is State.AWAIT_CLIENT, what="link mode")
            reader.scanners[0].scan(MEMBER)  # the member's current ID: the first of the two scans
            await until(lambda: reader.panel.link.machine.state is State.AWAIT_NEW_TAG, what="the member")
            reader.panel.gesture(Gesture.LONG_PRESS)
            await until(lambda: not reader.panel.link.is_active, what="the cancel")
            reader.scanners[0].scan("M1002")
            await until(lambda: len(feedback.decisions) == 1, what="check-in mode again")
        finally:
            await reader.close()

    asyncio.run(scenario())
    assert feedback.outcomes() == [("M1002", "accepted", False)]  # MEMBER, scanned in link mode, is not
    assert "link-mode-off" in feedback.signals
