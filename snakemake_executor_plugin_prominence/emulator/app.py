"""The Flask application: the real server's routes, status codes and bodies.

Views are thin: they read the request the way the real server reads it and call ``EmulatorCore``.
Where the real server raises an uncaught exception (a body it cannot handle, ``id=abc``, a
negative ``offset``...), the view raises too, and Flask answers its standard HTML 500 page; the
log says on stderr why the real server would have crashed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from .auth import Identity
from .config import MAX_BODY_BYTES
from .core import EmulatorCore, SubmissionRejected
from .listing import ListError, parse_query, select
from .oidc import TokenError
from .sandbox import ERR_FILE, OUT_FILE

log = logging.getLogger(__name__)

#: Where the emulated identity provider answers; ``PROMINENCE_OIDC_URL`` is the root URL plus
#: this, and its token endpoint is that plus ``/token`` (as the official CLI builds it).
OIDC_PATH = "/_emulator/oidc"


class _EmulatorFlask(Flask):
    """Flask that logs a server crash as one line explaining it, instead of a bare traceback."""

    def log_exception(self, exc_info: Any) -> None:
        _type, exc, _tb = exc_info
        log.warning(
            "%s %s -> HTTP 500, as the real server crashes here (%s: %s)",
            request.method,
            request.path,
            type(exc).__name__,
            exc,
        )
        log.debug("traceback of the emulated crash", exc_info=exc_info)


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def _int_arg(name: str, default: int) -> int:
    """An integer query parameter converted with ``int()`` like the server (crash on junk)."""
    return int(request.args[name]) if name in request.args else default


def create_app(core: EmulatorCore) -> Flask:
    """Build the WSGI app for ``core`` with every route under ``core.config.prefix``."""
    app = _EmulatorFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    api = Blueprint("api", __name__, url_prefix=core.config.prefix or None)

    def authenticated(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = core.auth.identify(request.headers.get("Authorization"))
            if caller is None:
                return _error("Authentication failure", 401)
            return view(caller, *args, **kwargs)

        return wrapper

    def owned(user: Identity, job_id: int) -> tuple[Any, Any]:
        """(record, None) for the user's job, else (None, the server's 400/403 answer)."""
        record = core.store.get(job_id)
        if record is None:
            return None, _error("Job does not exist", 400)
        if record.owner != user.name:
            return None, _error("Not authorized to access this job", 403)
        return record, None

    @api.post("/jobs")
    @authenticated
    def submit_job(user: Identity) -> Any:
        request.get_data(cache=True)  # a body over the limit is a 413, whatever its type
        # Without a JSON content type the real server validates ``None`` and crashes (500).
        body = request.get_json() if request.is_json else None
        try:
            record = core.submit(user, body)
        except SubmissionRejected as exc:
            return _error(str(exc), 400)
        return jsonify({"id": record.id}), 201

    @api.get("/jobs")
    @authenticated
    def list_jobs(user: Identity) -> Any:
        try:
            query = parse_query(request.args)
        except ListError as exc:
            return _error(exc.message, exc.status)
        records = select(core.store, user.name, query)
        render = core.describe if query.detail else core.summarise
        return jsonify([render(record) for record in records])

    @api.get("/jobs/<int:job_id>")
    @authenticated
    def describe_job(user: Identity, job_id: int) -> Any:
        record = core.store.get(job_id)
        if record is None or record.owner != user.name:
            return jsonify([])
        return jsonify([core.describe(record)])

    @api.delete("/jobs")
    @authenticated
    def delete_jobs(user: Identity) -> Any:
        if "id" not in request.args:
            return _error("a job id or list of job ids must be provided", 400)
        ids = [int(i) for i in request.args["id"].split(",")]
        return _deleted(core.delete(user.name, ids))

    @api.delete("/jobs/<int:job_id>")
    @authenticated
    def delete_job(user: Identity, job_id: int) -> Any:
        return _deleted(core.delete(user.name, [job_id]))

    def _deleted(removed: int) -> Any:
        return (jsonify({}), 200) if removed else _error("No such job(s)", 400)

    def _output(user: Identity, job_id: int, filename: str, label: str) -> Any:
        _int_arg("node", 0)  # parsed (and a crash if junk) like the server; one node only
        offset = _int_arg("offset", 0)
        record, failure = owned(user, job_id)
        if failure is not None:
            return failure
        if record.job_dir is None:  # instant mode: nothing ever ran
            return b""
        path = record.job_dir / filename
        if not path.is_file():
            return _error(f"{label} does not exist", 400)
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()

    @api.get("/jobs/<int:job_id>/stdout")
    @authenticated
    def job_stdout(user: Identity, job_id: int) -> Any:
        return _output(user, job_id, OUT_FILE, "stdout")

    @api.get("/jobs/<int:job_id>/stderr")
    @authenticated
    def job_stderr(user: Identity, job_id: int) -> Any:
        return _output(user, job_id, ERR_FILE, "stderr")

    @api.put("/jobs/<int:job_id>/remove")
    @authenticated
    def remove_job(user: Identity, job_id: int) -> Any:
        record, failure = owned(user, job_id)
        if failure is not None:
            return failure
        if not core.remove_from_queue(record):
            return _error("Job is no longer in the queue", 400)
        return jsonify({}), 200

    @api.put("/jobs/<int:job_id>/clone")
    @authenticated
    def clone_job(user: Identity, job_id: int) -> Any:
        record, failure = owned(user, job_id)
        if failure is not None:
            return failure
        try:
            clone = core.submit(user, record.spec)
        except SubmissionRejected as exc:
            return _error(str(exc), 400)
        return jsonify({"id": clone.id}), 201

    @api.post("/jobs/<int:job_id>/exec")
    @api.get("/jobs/<int:job_id>/snapshot")
    @api.put("/jobs/<int:job_id>/snapshot")
    @authenticated
    def disabled_feature(user: Identity, job_id: int) -> Any:
        # Off by default on the real server (ENABLE_EXEC / ENABLE_SNAPSHOTS), and here.
        return _error("Functionality disabled", 401)

    @api.get("/health")
    def health() -> Any:
        return Response(status=204)

    app.register_blueprint(api)

    @app.get("/_emulator/stats")
    def emulator_stats() -> Any:
        return jsonify(core.stats_payload())

    # The identity provider lives beside the API, not behind it: an API outage (faults,
    # latency) does not take it down, as a real identity provider is another service.
    @app.post(OIDC_PATH + "/token")
    def oidc_token() -> Any:
        auth = request.authorization
        basic = None
        if auth is not None and auth.type == "basic":
            basic = (auth.username or "", auth.password or "")
        answer = core.idp.grant(request.form, basic)
        if isinstance(answer, TokenError):
            return jsonify(answer.body()), answer.status
        return jsonify(answer)

    @app.post("/_emulator/login")
    def emulator_login() -> Any:
        """What `prominence login` would save to ~/.prominence/token, for user ``user``."""
        return jsonify(core.idp.login(request.args.get("user") or "emulator-user"))

    @app.post("/_emulator/expire-tokens")
    def emulator_expire_tokens() -> Any:
        return jsonify({"expired": core.idp.expire_all()})

    if core.config.prefix:
        app.add_url_rule("/health", "root_health", health)
    return app
