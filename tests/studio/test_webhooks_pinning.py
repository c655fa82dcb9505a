"""Webhook targets are resolved once and the connection goes to the checked address: a name
that resolves elsewhere a moment later (DNS rebinding) cannot reach a private address, while
the Host header, TLS SNI and the certificate check stay the name's."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from studio import webhooks
from studio.errors import InputError

NAME = "hooks.example.test"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.server.seen.append((self.headers.get("Host"), self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def resolver(monkeypatch):
    """getaddrinfo answering NAME from a script (the last answer repeats); the calls counted."""
    real = socket.getaddrinfo
    state = {"answers": ["127.0.0.1"], "calls": 0}

    def fake(host, port, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        state["calls"] += 1
        answers = state["answers"]
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return state


def test_a_send_resolves_the_name_once_and_keeps_the_name_in_the_host_header(
    settings, server, resolver
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    port = server.server_address[1]
    status = webhooks._post(f"http://{NAME}:{port}/hook?x=1", b"{}", {"X-Test": "1"})
    assert status == 204
    assert server.seen == [(f"{NAME}:{port}", "/hook?x=1")]
    assert resolver["calls"] == 1


def test_a_name_that_rebinds_to_loopback_after_the_check_is_still_sent_to_the_checked_address(
    settings, monkeypatch, resolver
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = False
    resolver["answers"] = ["93.184.216.34", "127.0.0.1"]  # public first, then rebinding
    connected = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with pytest.raises(OSError):
        webhooks._post(f"http://{NAME}/hook", b"{}", {})
    assert connected == [("93.184.216.34", 80)]
    assert resolver["calls"] == 1


def test_every_resolved_address_is_checked_and_one_private_address_refuses_the_send(
    settings, monkeypatch
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = False

    def two_addresses(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: pytest.fail("connected to a refused name")
    )
    with pytest.raises(InputError) as exc:
        webhooks._post(f"http://{NAME}/hook", b"{}", {})
    assert exc.value.errors[0].field == "url"
    assert "resolves to 10.0.0.5" in exc.value.errors[0].message


def test_a_delivery_to_a_name_resolving_to_a_metadata_address_is_logged_as_refused(
    settings, resolver
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = False
    resolver["answers"] = ["169.254.169.254"]
    with pytest.raises(InputError) as exc:
        webhooks.target_resolve(f"https://{NAME}/hook")
    assert "169.254.169.254" in str(exc.value)


# --- HTTPS: the certificate is checked for the name, not the address -------------------------


def _certificate(tmp_path, name: str):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(tmp_path):
    def start(name: str):
        cert, key = _certificate(tmp_path, name)
        httpd = HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.seen = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        started.append(httpd)
        return httpd, cert

    started: list = []
    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_https_to_the_pinned_address_checks_the_certificate_and_sni_for_the_name(
    settings, monkeypatch, resolver, tls_server
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    httpd, cert = tls_server(NAME)
    monkeypatch.setattr(webhooks, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    port = httpd.server_address[1]
    assert webhooks._post(f"https://{NAME}:{port}/hook", b"{}", {}) == 204
    assert httpd.seen == [(f"{NAME}:{port}", "/hook")]
    assert resolver["calls"] == 1


def test_https_refuses_a_certificate_for_another_name_at_the_same_address(
    settings, monkeypatch, resolver, tls_server
):
    settings.STUDIO_WEBHOOK_ALLOW_PRIVATE = True
    httpd, cert = tls_server("other.example.test")
    monkeypatch.setattr(webhooks, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        webhooks._post(f"https://{NAME}:{httpd.server_address[1]}/hook", b"{}", {})
    assert httpd.seen == []
