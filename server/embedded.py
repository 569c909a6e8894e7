"""Run the reference server in a background thread: for tests and `tagd demo`.

Plain HTTP is served by waitress (the production WSGI server). Waitress has no TLS, so when an `ssl_context` is
given the same app is served by werkzeug's threaded server wrapped in that context instead: good enough for tests of
a client's certificate handling; in production put waitress behind a TLS-terminating proxy.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any, Callable

import waitress
from werkzeug.serving import make_server

from server.app import create_app


class ServerHandle:
    """A running server: `url` (no trailing slash), `app`, and `stop()` (also on leaving a `with` block)."""

    def __init__(self, url: str, app: Any, run: Callable[[], None], shutdown: Callable[[], None]):
        self.url, self.app = url, app
        self._shutdown = shutdown
        self._thread = threading.Thread(target=run, name=f"tagd-server {url}", daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        """Stop serving and wait for the serving thread; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._shutdown()
        self._thread.join(timeout=10)
        self.app.extensions["tagd"].store.close()

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_server(db_path: str, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None,
                 **app_options: Any) -> ServerHandle:
    """Serve `create_app(db_path, **app_options)` on host:port (0: a free port) until `.stop()`."""
    app = create_app(db_path, **app_options)
    if ssl_context is not None:
        server = make_server(host, port, app, threaded=True, ssl_context=ssl_context)
        url = f"https://{_url_host(host)}:{server.server_port}"
        return ServerHandle(url, app, server.serve_forever, lambda: (server.shutdown(), server.server_close()))
    # asyncore_loop_timeout is an int to waitress: 0.2 became 0, a select() loop that never slept and took a
    # core away from the request threads. stop() wakes the loop through its trigger, so 1 s costs stop() nothing.
    server = waitress.create_server(app, host=host, port=port, threads=8, ident="tagd-server",
                                    asyncore_loop_timeout=1)
    url = f"http://{_url_host(host)}:{server.effective_port}"
    return ServerHandle(url, app, server.run, lambda: _stop_waitress(server))


def _stop_waitress(server: Any) -> None:
    # Close every dispatcher from inside the loop thread (closing sockets under a running select() from another
    # thread is a race); an empty map ends server.run(). Then the worker threads are stopped.
    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.handle_close()

    server.logger.setLevel(logging.CRITICAL)
    server.trigger.pull_trigger(close_all)
    server.task_dispatcher.shutdown()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
