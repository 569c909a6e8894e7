"""The composition root: the one place that turns settings into wired objects, for the CLI, the service and tests.

Backends are chosen here from configuration, never by a global: each scanner entry names its kind, and tests pass
their own factories (fakes) through the same functions.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Mapping

from . import config
from .errors import ConfigError, KeymapError
from .pipeline import ScanPipeline
from .settings import (HidScannerSettings, ScannerSettings, SerialScannerSettings, Settings,
                       StdinScannerSettings)


def load_settings(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Settings:
    path, explicit = config.resolve_path(cli_path, environ)
    return config.load(path, explicit)


def override_scanners(settings: Settings, *, device: str | None = None, serial: str | None = None,
                      stdin: bool = False, layout: str | None = None) -> Settings:
    """`tagd listen --device/--serial/--stdin` replaces the configured scanners with the one named."""
    chosen: list[ScannerSettings] = []
    if device:
        hid = HidScannerSettings(name="hid", device=device)
        chosen.append(dataclasses.replace(hid, layout=layout) if layout else hid)
    if serial:
        chosen.append(SerialScannerSettings(name="serial", port=serial))
    if stdin:
        chosen.append(StdinScannerSettings())
    return dataclasses.replace(settings, scanners=tuple(chosen)) if chosen else settings


def check_scanners(settings: Settings) -> None:
    """Fail at start-up, naming the key, for what only becomes visible when objects are built (XKB layouts)."""
    if not settings.scanners:
        raise ConfigError(os.path.basename(settings.source), "scanners",
                          "no scanner configured: add a [[scanners]] table, or pass --device, --serial or --stdin")
    from .keys import KeyDecoder

    for index, scanner in enumerate(settings.scanners):
        if isinstance(scanner, HidScannerSettings):
            try:
                KeyDecoder(scanner.layout, scanner.variant)
            except KeymapError as exc:
                raise ConfigError(os.path.basename(settings.source), f"scanners[{index}].layout", str(exc)) from exc


def build_pipeline(settings: Settings) -> ScanPipeline:
    return ScanPipeline(settings.scan, {s.name: s.rules for s in settings.scanners})


ScannerFactory = Callable[[ScannerSettings, Callable, Callable], object]


def build_scanner(scanner: ScannerSettings, sink: Callable, on_status: Callable):
    """The real driver for one configured scanner (imports are local: each backend pulls in its own library)."""
    if isinstance(scanner, HidScannerSettings):
        from drivers.hid import HidScanner

        return HidScanner(scanner, sink, on_status)
    if isinstance(scanner, SerialScannerSettings):
        from drivers.serial import SerialScanner

        return SerialScanner(scanner, sink, on_status)
    from drivers.terminal import StdinScanner

    return StdinScanner(scanner, sink, on_status)


def build_scanners(settings: Settings, sink: Callable, on_status: Callable,
                   factory: ScannerFactory = build_scanner) -> list:
    return [factory(scanner, sink, on_status) for scanner in settings.scanners]


TOKEN_CREDENTIAL = "tagd-token"  # the name under $CREDENTIALS_DIRECTORY when systemd's LoadCredential= supplies it


INSTALLED_TOKEN = "/etc/tagd/token"  # where `tagd provision` stores it (the unit's LoadCredential= source)


def token_path(settings: Settings, environ: Mapping[str, str] = os.environ) -> str | None:
    """server.token_file, else the credential systemd passes the service, else the provisioned file (so that
    `tagd sync` and `tagd doctor`, run by root from a shell, find the same token as the service)."""
    if settings.server.token_file:
        return settings.server.token_file
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        return os.path.join(credentials, TOKEN_CREDENTIAL)
    return INSTALLED_TOKEN if os.path.exists(INSTALLED_TOKEN) else None


def read_token(settings: Settings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The device token, or None for a standalone reader (no server URL). Missing when needed: ConfigError."""
    if not settings.server.url:
        return None
    path = token_path(settings, environ)
    source = os.path.basename(settings.source)
    if path is None:
        raise ConfigError(source, "server.token_file", "no device token: enrol this reader with `tagd provision`, "
                                                       "or set server.token_file")
    try:
        with open(path) as file:
            token = file.read().strip()
    except OSError as exc:
        raise ConfigError(source, "server.token_file", f"cannot read the device token {path}: "
                                                       f"{exc.strerror or exc}") from None
    if not token:
        raise ConfigError(source, "server.token_file", f"{path} is empty")
    return token


def check_ca_file(settings: Settings) -> None:
    """A private CA bundle that cannot be read fails at start-up (exit 78), not at the first request."""
    path = settings.server.ca_file
    if path and not os.access(path, os.R_OK):
        raise ConfigError(os.path.basename(settings.source), "server.ca_file", f"cannot read {path}")


def client_factory(settings: Settings, token: str | None) -> Callable[[], object] | None:
    """Makes one ServerClient per worker thread (a client's session is not shared between threads)."""
    if not settings.server.url:
        return None
    from .api_client import ServerClient

    return lambda: ServerClient(settings.server, token)


def make_reader(settings: Settings, feedback, scanner_factory: ScannerFactory = build_scanner,
                environ: Mapping[str, str] = os.environ, button_factory=None):
    """Everything `tagd run` runs for one configuration (also used by `tagd demo` and the tests)."""
    from .service import Reader

    check_scanners(settings)
    check_ca_file(settings)
    make_client = client_factory(settings, read_token(settings, environ))
    if make_client is not None and environ.get(STALL_DELIVERY_ENV) == "1":
        make_client = _stalling_delivery(make_client)
    return Reader(settings, feedback, make_client, scanner_factory, button_factory)


STALL_DELIVERY_ENV = "TAGD_DEBUG_STALL_DELIVERY"


def _stalling_delivery(make_client: Callable[[], object]) -> Callable[[], object]:
    """TAGD_DEBUG_STALL_DELIVERY=1, for testing the watchdog only: every check-in upload hangs forever, as a
    request stuck past all its timeouts would. The delivery thread stops taking work, the health check notices,
    the watchdog pings stop (daemon.supervision). Never set it on a real reader."""
    logging.getLogger("tagd").warning("%s=1: check-in delivery will hang (a watchdog test)", STALL_DELIVERY_ENV)

    class StalledClient:
        def __init__(self):
            self._client = make_client()

        def send_checkins(self, events):
            threading.Event().wait()

        def __getattr__(self, name: str):
            return getattr(self._client, name)

    return StalledClient


def sync_roster_now(settings: Settings):
    """`tagd sync` with no daemon running: this process is then the roster's only writer."""
    from .roster import RosterCache
    from .rostersync import RosterSync

    make_client = client_factory(settings, read_token(settings))
    if make_client is None:
        raise ConfigError(os.path.basename(settings.source), "server.url", "no server configured to sync from")
    os.makedirs(settings.state.dir, exist_ok=True)
    roster, client = RosterCache(os.path.join(settings.state.dir, "roster.db")), make_client()
    try:
        return RosterSync(roster, client, settings.sync.page_size).sync()
    finally:
        client.close()
        roster.close()
