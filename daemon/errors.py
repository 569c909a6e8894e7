"""One exception tree for the whole package: callers catch TagdError and nothing broader."""


class TagdError(Exception):
    """Base class of every error tagd raises on purpose."""


class ConfigError(TagdError):
    """The configuration is unusable. Carries the file and key so the message can name both."""

    exit_status = 78  # EX_CONFIG from sysexits.h: systemd's RestartPreventExitStatus keys on it

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class DeviceError(TagdError):
    """A scanner or other device could not be opened, grabbed or read."""


class KeymapError(TagdError):
    """An XKB layout/variant could not be compiled into a keymap."""


class ServerError(TagdError):
    """One request to the central server failed. The message names the request and, when there was one, the status.

    `retryable` tells the delivery worker whether the same request may succeed later (retry with back-off) or
    whether retrying is pointless until something changes (a token, the configuration, the request itself).
    `code` and `server_message` carry the contract's error body when the server sent one.
    """

    retryable = True

    def __init__(self, request: str, problem: str, status: int | None = None, code: str | None = None,
                 server_message: str | None = None):
        self.request, self.problem, self.status = request, problem, status
        self.code, self.server_message = code, server_message
        answer = f"HTTP {status}" + (f" {code}" if code else "") if status is not None else ""
        super().__init__(": ".join(part for part in (request, answer, problem) if part))


class Unreachable(ServerError):
    """No conversation with the server: DNS failure, connection refused or timed out, TLS handshake failed."""


class ServerTimeout(ServerError):
    """Connected, but the reply (headers or the whole body) did not arrive in time."""


class AuthRejected(ServerError):
    """401/403: the token is missing, unknown or revoked, or of the wrong kind. Stop retrying and report."""

    retryable = False


class Conflict(ServerError):
    """409: the request contradicts the server's state (`code`: id_taken, id_exists, enrolment_code_used, ...)."""

    retryable = False


class CursorExpired(ServerError):
    """410 on the roster: the cursor is older than the server's change log. Start a full sync."""

    retryable = False


class RequestRejected(ServerError):
    """Another 4xx (400, 404, 410, 413, 415, 422): this request will never succeed as it is."""

    retryable = False


class Throttled(ServerError):
    """429/503: the server asks us to come back later; `retry_after` is seconds, or None when it did not say."""

    def __init__(self, request: str, problem: str, status: int, retry_after: float | None, **detail):
        self.retry_after = retry_after
        super().__init__(request, problem, status, **detail)


class ServerFault(ServerError):
    """Another 5xx: the server (or a proxy in front of it) failed."""


class BadReply(ServerError):
    """The reply is unusable: not JSON, wrong shape, oversized, truncated, or a redirect we refuse to follow."""


class InsecureURL(ServerError):
    """The server URL is unusable or would send the token in clear text; refused before any connection."""

    retryable = False


class StoreError(TagdError):
    """A local SQLite store (roster cache, outbox) could not be opened, migrated, read or written."""
