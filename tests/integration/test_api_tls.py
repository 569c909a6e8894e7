"""The server client over HTTPS to the reference server, with certificates from a private (trustme) CA."""

from __future__ import annotations

import ssl

import pytest
import trustme

from daemon.api_client import ServerClient
from daemon.errors import Unreachable
from daemon.settings import ServerSettings
from server.embedded import start_server


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def serve_tls(tmp_path, certificate: trustme.LeafCert):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return start_server(str(tmp_path / "server.db"), ssl_context=context)


@pytest.fixture
def server(tmp_path, ca):
    with serve_tls(tmp_path, ca.issue_cert("localhost", "127.0.0.1")) as handle:
        yield handle


def ca_file(tmp_path, ca: trustme.CA) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def client(url: str, ca_path: str = "") -> ServerClient:
    return ServerClient(ServerSettings(url=url, ca_file=ca_path, connect_timeout_s=2.0, read_timeout_s=5.0))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_private_ca_verifies_the_server(tmp_path, ca, server, host):
    with client(f"https://{host}:{port_of(server.url)}", ca_file(tmp_path, ca)) as tls:
        assert tls.health().status == "ok"


def test_a_certificate_from_another_ca_is_refused(tmp_path, server):
    with client(server.url, ca_file(tmp_path, trustme.CA())) as tls, pytest.raises(Unreachable) as raised:
        tls.health()
    assert "TLS handshake with https://127.0.0.1:" in str(raised.value)
    assert "certificate verify failed" in str(raised.value) and raised.value.retryable


def test_the_system_store_does_not_trust_a_private_ca(server):
    with client(server.url) as tls, pytest.raises(Unreachable, match="certificate verify failed"):
        tls.health()


@pytest.mark.parametrize(("host", "complaint"), [("127.0.0.1", "IP address mismatch"),
                                                  ("localhost", "Hostname mismatch")])
def test_a_certificate_for_another_hostname_is_refused(tmp_path, ca, host, complaint):
    with serve_tls(tmp_path, ca.issue_cert("checkin.example.com")) as handle:
        url = f"https://{host}:{port_of(handle.url)}"
        with client(url, ca_file(tmp_path, ca)) as tls, pytest.raises(Unreachable, match=complaint):
            tls.health()


def test_a_missing_ca_file_is_reported_not_raised_raw(tmp_path, server):
    missing = str(tmp_path / "no-such-ca.pem")
    with client(server.url, missing) as tls, pytest.raises(Unreachable, match=f"TLS set-up .* {missing}"):
        tls.health()


def test_a_ca_file_that_is_not_pem_fails_the_handshake(tmp_path, server):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with client(server.url, str(garbage)) as tls, pytest.raises(Unreachable, match="TLS handshake .* failed"):
        tls.health()
