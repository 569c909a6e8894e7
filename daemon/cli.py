"""The `tagd` command line. Thin: parse arguments, build through daemon.bootstrap, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from . import __version__, bootstrap, config
from .errors import ConfigError, TagdError
from .logs import setup_logging

EX_OK, EX_USAGE, EX_SOFTWARE = 0, 64, 70


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help=f"configuration file (default: $TAGD_CONFIG, else {config.DEFAULT_PATH})")
    parser = argparse.ArgumentParser(prog="tagd", parents=[common],
                                     description="Check-in reader daemon for barcode and key-tag scanners.")
    parser.add_argument("--version", action="version", version=f"tagd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listen = commands.add_parser("listen", parents=[common], help="print one JSON line per scan (scanner check)")
    source = listen.add_mutually_exclusive_group()
    source.add_argument("--device", metavar="PATH", help="one HID scanner: /dev/input/by-id/... or /dev/input/eventN")
    source.add_argument("--serial", metavar="PORT", help="one serial scanner: /dev/serial/by-id/... or /dev/ttyACM0")
    source.add_argument("--stdin", action="store_true", help="lines typed on the terminal are scans")
    listen.add_argument("--layout", metavar="XKB", help="keyboard layout of the --device scanner (default: us)")
    devices = commands.add_parser("devices", parents=[common], help="list input devices and serial ports")
    devices.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("config", parents=[common], help="print the effective settings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"tagd: {exc}", file=sys.stderr)
        return exc.exit_status
    except TagdError as exc:
        print(f"tagd: {exc}", file=sys.stderr)
        return EX_SOFTWARE


def cmd_listen(args: argparse.Namespace) -> int:
    settings = bootstrap.load_settings(getattr(args, "config", None))
    settings = bootstrap.override_scanners(settings, device=args.device, serial=args.serial, stdin=args.stdin,
                                           layout=args.layout)
    bootstrap.check_scanners(settings)
    setup_logging(settings.logging.level)
    from .listen import listen

    asyncio.run(listen(settings, sys.stdout))
    return EX_OK


def cmd_config(args: argparse.Namespace) -> int:
    settings = bootstrap.load_settings(getattr(args, "config", None))
    sys.stdout.write(f"# effective settings from {settings.source}\n{config.render(settings)}")
    return EX_OK


def cmd_devices(args: argparse.Namespace) -> int:
    from drivers.discovery import list_input_devices
    from drivers.serial import list_serial_ports

    rows = [{"kind": "hid", **d} for d in list_input_devices()] + [{"kind": "serial", **p} for p in list_serial_ports()]
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_devices(rows))
    return EX_OK


def format_devices(rows: list[dict]) -> str:
    if not rows:
        return "no input devices or serial ports found (is this user in the 'input' and 'dialout' groups?)\n"
    lines = []
    for row in rows:
        path = row.get("by_id") or row.get("path") or row.get("device")
        access = "ok" if row.get("can_open", True) and row.get("can_grab", True) else row.get("problem") or "no access"
        hint = "  [scanner?]" if row.get("looks_like_scanner") else ""
        lines.append(f"{row['kind']:6}  {row.get('vendor_product') or '-':9}  {path}\n"
                     f"        {row.get('name') or row.get('description') or ''}{hint}  access: {access}")
    return "\n".join(lines) + "\n"


COMMANDS = {"listen": cmd_listen, "config": cmd_config, "devices": cmd_devices}

if __name__ == "__main__":
    sys.exit(main())
