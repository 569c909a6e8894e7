"""The `tagd` command line. Thin: parse arguments, build through daemon.bootstrap, run, map errors to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

from . import __version__, bootstrap, config
from .errors import ConfigError, TagdError
from .logs import setup_logging

EX_OK, EX_USAGE, EX_UNAVAILABLE, EX_SOFTWARE = 0, 64, 69, 70


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
    run = commands.add_parser("run", parents=[common], help="run the reader daemon (what the service runs)")
    run.add_argument("--feedback", choices=("log", "terminal"), default="log",
                     help="where decisions are shown: the log (default), or one line each on standard output "
                          "(a console at the desk; a line is printed only after its check-in is safely recorded)")
    status = commands.add_parser("status", parents=[common], help="roster, queue, dead letters, scanners, server")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("sync", parents=[common], help="sync the roster from the server now")
    commands.add_parser("link", parents=[common], help="put the running reader into link mode (as the staff button)")
    demo = commands.add_parser("demo", help="the reader and an embedded reference server, no hardware needed")
    demo.add_argument("--data-dir", metavar="DIR", help="keep the demo's data here (default: a new temporary dir)")
    provision = commands.add_parser("provision", help="enrol with the server; install config, token, unit, udev")
    provision.add_argument("--server", required=True, metavar="URL", help="e.g. https://checkin.example.com")
    provision.add_argument("--code", required=True, metavar="CODE", help="the one-time enrolment code from the office")
    provision.add_argument("--name", help="the device name the server shows (default: the host name)")
    provision.add_argument("--ca", metavar="FILE", help="PEM bundle of a private CA to trust for the server")
    provision.add_argument("--root", metavar="DIR", help="write every file under DIR (image building, tests)")
    provision.add_argument("--dry-run", action="store_true", help="show what would be done; write and enrol nothing")
    doctor = commands.add_parser("doctor", parents=[common], help="check config, token, server, clock, devices...")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
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
        usable = all(row.get(key, True) for key in ("can_open", "can_grab", "accessible"))  # hid and serial keys
        access = "ok" if usable else row.get("problem") or row.get("reason") or "no access"
        hint = "  [scanner?]" if row.get("looks_like_scanner") else ""
        lines.append(f"{row['kind']:6}  {row.get('vendor_product') or '-':9}  {path}\n"
                     f"        {row.get('name') or row.get('description') or ''}{hint}  access: {access}")
    return "\n".join(lines) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    settings = bootstrap.load_settings(getattr(args, "config", None))
    setup_logging(settings.logging.level)
    from drivers.outputs import TerminalOutput

    from .feedback import LogFeedback
    from .sdnotify import Notifier
    from .service import serve
    from .supervision import Supervisor

    feedback = TerminalOutput(sys.stdout) if args.feedback == "terminal" else LogFeedback()

    def reader(current):
        return bootstrap.make_reader(current, feedback)

    def reload():
        """SIGHUP: the new settings, checked as far as possible before the running reader is closed for them."""
        current = bootstrap.load_settings(getattr(args, "config", None))
        bootstrap.check_scanners(current)
        bootstrap.read_token(current)
        return current

    asyncio.run(serve(settings, reader, reload, supervisor=Supervisor(Notifier())))
    return EX_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .status import collect, format_status

    settings = bootstrap.load_settings(getattr(args, "config", None))
    status = collect(settings.state.dir)
    if args.json:
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_status(status))
    return EX_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from .status import daemon_alive, read_status

    settings = bootstrap.load_settings(getattr(args, "config", None))
    runtime = read_status(settings.state.dir)
    if daemon_alive(runtime):
        os.kill(runtime["pid"], signal.SIGUSR1)
        print(f"asked the running daemon (pid {runtime['pid']}) to sync the roster now; see `tagd status`")
        return EX_OK
    setup_logging(settings.logging.level)
    report = bootstrap.sync_roster_now(settings)
    print(f"roster {report.kind} sync: {report.entries} entries applied, {report.size} IDs now")
    return EX_OK


def cmd_link(args: argparse.Namespace) -> int:
    from .status import daemon_alive, read_status

    settings = bootstrap.load_settings(getattr(args, "config", None))
    runtime = read_status(settings.state.dir)
    if not daemon_alive(runtime):
        print("tagd: no running reader to put into link mode (is the service active?)", file=sys.stderr)
        return EX_UNAVAILABLE
    os.kill(runtime["pid"], signal.SIGUSR2)
    print(f"link mode requested from the running reader (pid {runtime['pid']}): scan the tag now")
    return EX_OK


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging("warning")
    from .demo import run_demo

    return run_demo(args.data_dir)


def cmd_provision(args: argparse.Namespace) -> int:
    from .provision import Host, Request, provision, tagd_executable

    request = Request(args.server, args.code, args.name, args.ca, args.root, args.dry_run)
    provision(request, Host(tagd=tagd_executable()), sys.stdout)
    return EX_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import diagnose, report

    return report(diagnose(getattr(args, "config", None)), sys.stdout, args.json)


COMMANDS = {"listen": cmd_listen, "config": cmd_config, "devices": cmd_devices, "run": cmd_run,
            "status": cmd_status, "sync": cmd_sync, "demo": cmd_demo, "provision": cmd_provision,
            "doctor": cmd_doctor, "link": cmd_link}

if __name__ == "__main__":
    sys.exit(main())
