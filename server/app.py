"""The Flask application: contract validation (openapi-core), authentication, errors as JSON, the blueprints.

`create_app(db_path)` is the composition root used by `tagd-server serve`, `server.embedded` and the tests.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import yaml
from flask import Flask, Response, g, jsonify, request
from openapi_core import OpenAPI
from openapi_core.contrib.flask import FlaskOpenAPIRequest, FlaskOpenAPIResponse
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.validation.request.exceptions import SecurityValidationError
from werkzeug.exceptions import HTTPException

from server.errors import Forbidden, ServerError
from server.rules import format_time
from server.service import authenticate
from server.sqlite_store import SqliteStore
from server.storage import Principal, Store

log = logging.getLogger(__name__)
_RULE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")  # Flask '<int:client_ref>' -> OpenAPI '{client_ref}'
CONTRACT = Path(__file__).parent / "openapi.yaml"  # shipped as package data
MAX_BODY_BYTES = 4 * 1024 * 1024  # a full check-in batch is well under 200 KiB


def load_contract() -> dict:
    """The OpenAPI document shipped with the package."""
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


class ServerContext:
    """What every request needs: the store, the contract, the clock and the roster log retention."""

    def __init__(self, store: Store, clock: Callable[[], datetime], tombstone_retention: timedelta,
                 prune_interval: timedelta, validate_responses: bool):
        self.store, self.clock = store, clock
        self.tombstone_retention, self.prune_interval = tombstone_retention, prune_interval
        self.validate_responses = validate_responses
        contract = load_contract()
        self.openapi = OpenAPI.from_dict(contract)
        self.query_names = _query_names(contract)
        self._last_prune: dict[int, datetime] = {}  # business id -> when its tombstones were last pruned
        self._prune_lock = threading.Lock()

    def now(self) -> str:
        return format_time(self.clock())

    def prune_if_due(self, business_id: int) -> None:
        """Forget roster tombstones older than the retention, at most once per interval."""
        moment = self.clock()
        with self._prune_lock:
            last = self._last_prune.get(business_id)
            if last is not None and moment - last < self.prune_interval:
                return
            self._last_prune[business_id] = moment
        with self.store.transaction() as tx:
            tx.prune_tombstones(business_id, format_time(moment - self.tombstone_retention))


def _query_names(contract: dict) -> dict[tuple[str, str], set[str]]:
    """(path template, METHOD) -> the query parameters the contract declares for it."""
    names = {}
    for path, item in contract["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method != "parameters":
                params = shared + operation.get("parameters", [])
                names[path, method.upper()] = {p["name"] for p in params if p["in"] == "query"}
    return names


def create_app(db_path: str, *, clock: Callable[[], datetime] | None = None,
               tombstone_retention: timedelta = timedelta(days=30), prune_interval: timedelta = timedelta(hours=1),
               validate_responses: bool = True, store: Store | None = None) -> Flask:
    """A WSGI app serving the API on the SQLite database at `db_path` (created and migrated if needed)."""
    app = Flask("tagd-server")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    context = ServerContext(store or SqliteStore(db_path), clock or (lambda: datetime.now(timezone.utc)),
                            tombstone_retention, prune_interval, validate_responses)
    app.extensions["tagd"] = context
    app.before_request(_validate_request)
    app.after_request(_validate_response)
    app.register_error_handler(ServerError, _server_error)
    app.register_error_handler(HTTPException, _http_error)
    from server.api_device import device_api
    from server.api_office import office_api
    app.register_blueprint(device_api)
    app.register_blueprint(office_api)
    app.add_url_rule("/v1/health", "health", lambda: {"status": "ok", "api_version": "1"})
    return app


def context() -> ServerContext:
    from flask import current_app
    return current_app.extensions["tagd"]


def error_reply(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tagd"'
    return response


def _server_error(exc: ServerError) -> Response:
    return error_reply(exc.status, exc.code, exc.message)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type"}


def _http_error(exc: HTTPException) -> Response:
    response = error_reply(exc.code or 500, _HTTP_CODES.get(exc.code, "invalid_request"), exc.description or "")
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _validate_request() -> Response | None:
    if request.url_rule is None:
        return None  # Flask answers 404/405 itself
    if request.content_length and request.is_json and request.get_json(silent=True) is None:
        return error_reply(400, "invalid_request", "the body is not valid UTF-8 JSON")
    method = "GET" if request.method == "HEAD" else request.method
    known = context().query_names.get((_RULE_PARAM.sub(r"{\1}", request.url_rule.rule), method), set())
    unknown = sorted(set(request.args) - known)
    if unknown:  # a misspelt parameter (curser=...) must not be silently ignored
        return error_reply(400, "invalid_request", f"unknown query parameters: {', '.join(unknown)}")
    try:
        context().openapi.validate_request(FlaskOpenAPIRequest(request))
    except (PathNotFound, OperationNotFound):
        return None
    except SecurityValidationError:
        return error_reply(401, "unauthorized", "send Authorization: Bearer <token>")
    except Exception as exc:  # every other openapi-core complaint is the request's fault
        return _contract_violation(exc)
    return None


def _contract_violation(exc: Exception) -> Response:
    cause = exc.__cause__
    if isinstance(cause, MediaTypeNotFound):
        return error_reply(415, "unsupported_media_type", "send the body as application/json")
    details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or []
    message = str(exc) + "".join(f"; {error.message}" for error in list(details)[:3])
    return error_reply(400, "invalid_request", message)


def _validate_response(response: Response) -> Response:
    ctx = context()
    if not ctx.validate_responses or request.url_rule is None or response.is_streamed:
        return response  # the streamed roster is checked by the contract tests instead
    try:
        ctx.openapi.validate_response(FlaskOpenAPIRequest(request), FlaskOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        return response
    except Exception as exc:
        log.error("response breaks the contract: %s %s -> %s: %s", request.method, request.path,
                  response.status_code, exc)
        return error_reply(500, "response_invalid", "the server's reply broke its own contract")
    return response


def require(*roles: str) -> Principal:
    """The caller, authenticated, if its role is one of `roles`; else 401/403."""
    with context().store.read() as tx:
        principal = authenticate(tx, request.headers.get("Authorization"))
    if principal.role not in roles:
        raise Forbidden("forbidden", f"a {principal.role} token may not use this operation")
    g.principal = principal
    return principal


def body() -> dict:
    """The JSON body (already validated against the contract), integral floats made ints.

    JSON Schema counts 8.0 as an integer, and the API has no fractional fields, so `"length": 8.0` means 8.
    """
    return _integral(request.get_json(silent=True) or {})


def _integral(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value
