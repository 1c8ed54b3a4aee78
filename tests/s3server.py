"""An S3-compatible HTTP server on loopback for end-to-end tests: moto's S3 in server mode,
behind a gate that checks every request's AWS Signature Version 4 against one key pair.

moto itself accepts any credentials. The gate makes the server behave like real object storage
in the one respect these tests care about: a request signed with another access key, with the
wrong secret key, or not signed at all is refused with S3's own 403 error. So a Snakemake job
that writes to the bucket proves it had exactly the right credentials. Every request is also
recorded (method, path, access key, verdict) for the tests to inspect.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import io
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

REGION = "us-east-1"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+),\s*"
    r"SignedHeaders=(?P<headers>[^,]+),\s*Signature=(?P<signature>[0-9a-f]+)$"
)
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    access_key: str | None
    error: str | None  # the S3 error code it was refused with, None if it was let through


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request: noise
        pass


def _header(environ: dict, name: str) -> str:
    if name in ("content-type", "content-length"):
        return environ.get(name.upper().replace("-", "_"), "")
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def _canonical_query(query: str) -> str:
    # The client sends the query already URI-encoded; SigV4 sorts its key=value pairs.
    pairs = [pair.partition("=") for pair in query.split("&")] if query else []
    return "&".join(f"{key}={value}" for key, _, value in sorted(pairs))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(environ: dict, secret_key: str, scope: str, signed: list[str]) -> str:
    """The SigV4 signature of this request under ``secret_key`` (AWS's published algorithm,
    computed independently of botocore, which signed it)."""
    raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    canonical_request = "\n".join(
        [
            environ["REQUEST_METHOD"],
            raw.path,
            _canonical_query(raw.query),
            "".join(f"{name}:{' '.join(_header(environ, name).split())}\n" for name in signed),
            ";".join(signed),
            _header(environ, "x-amz-content-sha256"),
        ]
    )
    return _sign(secret_key, scope, _header(environ, "x-amz-date"), canonical_request)


def _sign(secret_key: str, scope: str, amz_date: str, canonical_request: str) -> str:
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_key).encode()
    for part in scope.split("/"):  # date, region, service, "aws4_request"
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class SignatureGate:
    """WSGI middleware: let through only requests correctly signed with the one key pair."""

    def __init__(self, app: Callable, access_key: str, secret_key: str) -> None:
        self.app = app
        self.access_key = access_key
        self.secret_key = secret_key
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def check(self, environ: dict) -> tuple[str | None, str | None]:
        """(access key, error code) for this request; error None means the signature holds."""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "X-Amz-Signature" in query and not _header(environ, "authorization"):
            return self.check_presigned(environ, {k: v[0] for k, v in query.items()})
        match = _AUTH.match(_header(environ, "authorization"))
        if match is None:
            return None, "AccessDenied"
        if match["key"] != self.access_key:
            return match["key"], "InvalidAccessKeyId"
        if not _header(environ, "x-amz-date"):
            return match["key"], "AccessDenied"
        signed = match["headers"].split(";")
        wanted = expected_signature(environ, self.secret_key, match["scope"], signed)
        if not hmac.compare_digest(wanted, match["signature"]):
            return match["key"], "SignatureDoesNotMatch"
        # Over plain HTTP botocore signs the payload: the body must hash to what was signed.
        declared = _header(environ, "x-amz-content-sha256")
        if _HEX_SHA256.match(declared):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if hashlib.sha256(body).hexdigest() != declared:
                return match["key"], "XAmzContentSHA256Mismatch"
        return match["key"], None

    def check_presigned(
        self, environ: dict, query: dict[str, str]
    ) -> tuple[str | None, str | None]:
        """A presigned URL: the signature is in the query string, over the other parameters,
        the signed headers and an unsigned payload (AWS's query-string SigV4)."""
        key, _, scope = query.get("X-Amz-Credential", "").partition("/")
        if key != self.access_key:
            return key or None, "InvalidAccessKeyId"
        expires = int(query.get("X-Amz-Expires", "0"))
        signed_at = datetime.datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
        if datetime.datetime.utcnow() > signed_at + datetime.timedelta(seconds=expires):
            return key, "AccessDenied"
        raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
        unsigned_query = "&".join(
            part for part in raw.query.split("&") if not part.startswith("X-Amz-Signature=")
        )
        signed = query["X-Amz-SignedHeaders"].split(";")
        canonical_request = "\n".join(
            [
                environ["REQUEST_METHOD"],
                raw.path,
                _canonical_query(unsigned_query),
                "".join(f"{name}:{' '.join(_header(environ, name).split())}\n" for name in signed),
                ";".join(signed),
                "UNSIGNED-PAYLOAD",
            ]
        )
        wanted = _sign(self.secret_key, scope, query["X-Amz-Date"], canonical_request)
        if not hmac.compare_digest(wanted, query["X-Amz-Signature"]):
            return key, "SignatureDoesNotMatch"
        return key, None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        access_key, error = self.check(environ)
        with self._lock:
            self.requests.append(
                Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), access_key, error)
            )
        if error is None:
            return self.app(environ, start_response)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{error}</Code><Message>Refused by the test server's signature "
            f"check</Message><Resource>{environ.get('PATH_INFO', '')}</Resource></Error>"
        ).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def refused(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.error is not None]

    def accepted(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.error is None]


class _GatedMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` with its WSGI app wrapped in the gate (moto 5 builds the app and
    the server in ``_server_entry``; this is that method with the wrapper added)."""

    def __init__(self, wrap: Callable[[Callable], Callable], port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._wrap = wrap

    def _server_entry(self) -> None:
        app = self._wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_QuietHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class S3Server:
    """moto's S3 on ``127.0.0.1:<free port>`` that only accepts ``access_key``/``secret_key``.

    Use as a context manager; ``endpoint_url`` is the URL for ``--storage-s3-endpoint-url``.
    """

    def __init__(self, access_key: str, secret_key: str) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.gate: SignatureGate | None = None
        self._server = _GatedMotoServer(self._make_gate)
        self.endpoint_url = ""

    def _make_gate(self, app: Callable) -> SignatureGate:
        self.gate = SignatureGate(app, self.access_key, self.secret_key)
        return self.gate

    def __enter__(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (by default with the right credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` in ``bucket``: key (without the prefix) -> content."""
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"][len(prefix) :]] = body
        return found
