"""Errors the server reports to callers. Each carries its HTTP status and a stable machine-readable code.

The rules and the service raise these; the app turns them into `{"error": {"code", "message"}}` replies.
"""

from __future__ import annotations

from daemon.errors import TagdError


class ServerError(TagdError):
    """A request the server refuses. `code` is part of the API contract (see openapi.yaml)."""

    status = 400

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


class InvalidRequest(ServerError):
    status = 400


class Unauthorized(ServerError):
    status = 401


class Forbidden(ServerError):
    status = 403


class NotFound(ServerError):
    status = 404


class Conflict(ServerError):
    status = 409


class Gone(ServerError):
    status = 410


class RuleViolation(ServerError):
    """A well-formed value that breaks a business rule (an ID, a policy)."""

    status = 422


class StorageError(TagdError):
    """The database is unusable (bad file, newer schema than this server knows)."""
