"""The reference server on real loopback sockets (waitress, and werkzeug for TLS), driven with requests."""

from __future__ import annotations

import ssl
import threading
import uuid

import pytest
import requests
import trustme

from server.cli import main as server_cli
from server.demo import seed_demo
from server.embedded import start_server


@pytest.fixture
def demo(tmp_path):
    db = str(tmp_path / "live.db")
    made = seed_demo(db)
    with start_server(db) as handle:
        yield handle, made


def _enrol(url: str, code: str) -> dict:
    reply = requests.post(f"{url}/v1/device/enrol", json={"code": code, "hardware_id": "pi", "name": "door"}, timeout=5)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_demo_device_enrols_syncs_and_checks_in_over_http(demo):
    handle, made = demo
    device = _enrol(handle.url, made["enrolment_code"]["code"])
    auth = {"Authorization": f"Bearer {device['token']}"}
    roster = requests.get(f"{handle.url}/v1/device/roster", headers=auth, timeout=5).json()
    statuses = {e["client_id"]: e["status"] for e in roster["items"]}
    assert len(statuses) == 36 and statuses[made["inactive_client_id"]] == "inactive"
    event = {"event_id": str(uuid.uuid4()), "client_id": "m1001", "scanned_at": "2025-03-01T09:00:00Z",
             "decision": "accepted", "offline": False}
    results = requests.post(f"{handle.url}/v1/device/checkins", json={"events": [event]}, headers=auth,
                            timeout=5).json()["results"]
    assert results[0]["result"] == "accepted"


def test_a_large_roster_page_is_streamed_in_chunks(demo):
    handle, made = demo
    staff = {"Authorization": f"Bearer {made['admin_token']}"}
    refs = [requests.post(f"{handle.url}/v1/clients", json={"name": f"N{n}"}, headers=staff, timeout=5).json()["ref"]
            for n in range(50)]
    assert requests.post(f"{handle.url}/v1/clients/generate-ids", json={"client_refs": refs}, headers=staff,
                         timeout=5).json() == {"generated": 50, "skipped": 0}
    device = _enrol(handle.url, made["enrolment_code"]["code"])
    with requests.get(f"{handle.url}/v1/device/roster", params={"limit": 5000}, stream=True, timeout=5,
                      headers={"Authorization": f"Bearer {device['token']}"}) as reply:
        assert reply.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in reply.headers
        page = reply.json()
    assert len(page["items"]) == 86 and page["more"] is False


def test_two_threads_racing_for_one_id_leave_exactly_one_winner(demo):
    handle, made = demo
    staff = {"Authorization": f"Bearer {made['staff_token']}"}
    for round_no in range(10):
        refs = [requests.post(f"{handle.url}/v1/clients", json={"name": f"R{round_no}{side}"}, headers=staff,
                              timeout=5).json()["ref"] for side in "ab"]
        barrier, replies = threading.Barrier(2), {}

        def claim(ref: int, tag: str) -> None:
            barrier.wait()
            replies[ref] = requests.put(f"{handle.url}/v1/clients/{ref}/client-id", json={"client_id": tag},
                                        headers=staff, timeout=5)

        threads = [threading.Thread(target=claim, args=(ref, tag))
                   for ref, tag in zip(refs, (f"RACE{round_no}", f"race{round_no}"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(reply.status_code for reply in replies.values())
        assert statuses == [200, 409], [reply.text for reply in replies.values()]
        holders = requests.get(f"{handle.url}/v1/clients", params={"client_id": f"race{round_no}"}, headers=staff,
                               timeout=5).json()["items"]
        assert len(holders) == 1


def test_https_is_served_when_an_ssl_context_is_given(tmp_path):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with start_server(str(tmp_path / "tls.db"), ssl_context=context) as handle, ca.cert_pem.tempfile() as ca_file:
        assert handle.url.startswith("https://127.0.0.1:")
        assert requests.get(f"{handle.url}/v1/health", verify=ca_file, timeout=5).json()["status"] == "ok"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{handle.url}/v1/health", timeout=5)  # not trusted without the test CA


def test_stop_frees_the_port_and_is_idempotent(tmp_path):
    handle = start_server(str(tmp_path / "stop.db"))
    url = handle.url
    handle.stop()
    handle.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/v1/health", timeout=2)


def test_admin_cli_sets_up_a_business_and_manages_ids(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    assert server_cli(["--db", db, "init", "--business", "Gym", "--location", "Main", "--location", "North"]) == 0
    assert "Admin token (shown once): " in capsys.readouterr().out
    (tmp_path / "members.csv").write_text("name,client_id,status\nAnna,AB12,\nBob,,inactive\n")
    assert server_cli(["--db", db, "clients", "import", str(tmp_path / "members.csv")]) == 0
    assert server_cli(["--db", db, "ids", "bulk-generate", "--all"]) == 0
    assert "generated 1, skipped 1" in capsys.readouterr().out
    assert server_cli(["--db", db, "ids", "set", "2", "ab12"]) == 1
    assert "id_taken" in capsys.readouterr().err
    assert server_cli(["--db", db, "enrol-code", "North", "--ttl", "600"]) == 0
    assert "enrolment code for North: " in capsys.readouterr().out
    assert server_cli(["--db", db, "clients", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "1\tAB12\tactive\tAnna" and listed[1].endswith("\tinactive\tBob")
