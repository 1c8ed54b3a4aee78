"""TLS verification is always on; --prominence-ca-bundle makes a private CA work."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from snakemake_executor_plugin_prominence.service.auth import TokenProvider
from snakemake_executor_plugin_prominence.service.client import ProminenceClient, ServiceUnavailable
from tests.emulator_helpers import jwt_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


class _JobsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    """An HTTPS server on loopback with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JobsHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/api/v1", cert
    server.shutdown()


def test_unknown_ca_is_refused(https_server):
    url, _ = https_server
    client = ProminenceClient(url, TokenProvider(jwt_for("t"), None, {}), attempts=0)
    with pytest.raises(ServiceUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        client.list_jobs([1])


def test_ca_bundle_is_used(https_server):
    url, cert = https_server
    client = ProminenceClient(url, TokenProvider(jwt_for("t"), None, {}), verify=Path(cert))
    assert client.list_jobs([1]) == []
