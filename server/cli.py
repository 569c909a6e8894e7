"""`tagd-server`: the admin CLI of the reference server (set up a business, serve, manage clients and IDs)."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import datetime, timedelta, timezone

from daemon.errors import TagdError
from server import service
from server.rules import canonical_time, format_time
from server.sqlite_store import SqliteStore
from server.storage import CheckinQuery, ClientQuery, Tx


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagd-server", description=__doc__)
    parser.add_argument("--db", default=os.environ.get("TAGD_SERVER_DB", "./tagd-server.db"),
                        help="SQLite database (default $TAGD_SERVER_DB or ./tagd-server.db)")
    parser.add_argument("--business", type=int, help="business id (default: the only one)")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a business; prints its admin token once")
    init.add_argument("--business", dest="business_name", required=True)
    init.add_argument("--location", action="append", required=True, help="repeat for each location")
    serve = sub.add_parser("serve", help="serve the API with waitress")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    clients = sub.add_parser("clients").add_subparsers(dest="action", required=True)
    add = clients.add_parser("add")
    add.add_argument("name")
    add.add_argument("--id", dest="client_id")
    add.add_argument("--inactive", action="store_true")
    clients.add_parser("import", help="CSV with a header: name[,client_id][,status]").add_argument("csv")
    clients.add_parser("list").add_argument("--q")
    ids = sub.add_parser("ids").add_subparsers(dest="action", required=True)
    set_id = ids.add_parser("set")
    set_id.add_argument("ref", type=int)
    set_id.add_argument("client_id")
    set_id.add_argument("--replace", action="store_true")
    generate = ids.add_parser("generate")
    generate.add_argument("ref", type=int)
    generate.add_argument("--replace", action="store_true")
    generate.add_argument("--length", type=int)
    bulk = ids.add_parser("bulk-generate")
    bulk.add_argument("refs", type=int, nargs="*")
    bulk.add_argument("--all", action="store_true")
    code = sub.add_parser("enrol-code", help="issue a one-time device enrolment code")
    code.add_argument("location", help="location name or id")
    code.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    checkins = sub.add_parser("checkins")
    checkins.add_argument("--since")
    checkins.add_argument("--until")
    checkins.add_argument("--limit", type=int, default=100)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    store = SqliteStore(args.db)
    try:
        with store.transaction() as tx:
            now = format_time(datetime.now(timezone.utc))
            if args.command == "init":
                business_id, token = service.init_business(tx, args.business_name, args.location, now)
                print(f"business {business_id} created. Admin token (shown once): {token}")
            else:
                COMMANDS[args.command](tx, _business(tx, args), args, now)
    except TagdError as exc:
        print(f"tagd-server: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import waitress

    from server.app import create_app
    waitress.serve(create_app(args.db), host=args.host, port=args.port, ident="tagd-server")
    return 0


def _business(tx: Tx, args: argparse.Namespace) -> int:
    if args.business is not None:
        return args.business
    ids = tx.business_ids()
    if len(ids) != 1:
        raise TagdError(f"{len(ids)} businesses in the database: pass --business ID")
    return ids[0]


def _clients(tx: Tx, business_id: int, args: argparse.Namespace, now: str) -> None:
    if args.action == "add":
        status = "inactive" if args.inactive else "active"
        _print_client(service.create_client(tx, business_id, args.name, status, args.client_id, now))
    elif args.action == "import":
        with open(args.csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            service.create_client(tx, business_id, row["name"], row.get("status") or "active",
                                  row.get("client_id") or None, now)
        print(f"imported {len(rows)} clients")
    else:
        after = 0
        while page := tx.clients(business_id, ClientQuery(name_contains=args.q, after=after, limit=500)):
            for client in page:
                _print_client(client)
            after = page[-1].ref


def _print_client(c) -> None:
    print(f"{c.ref}\t{c.client_id or '-'}\t{c.status}\t{c.name}")


def _ids(tx: Tx, business_id: int, args: argparse.Namespace, now: str) -> None:
    if args.action == "set":
        change = service.assign_id(tx, business_id, args.ref, args.client_id, args.replace, now)
        _print_client(change.client)
    elif args.action == "generate":
        change = service.generate_id(tx, business_id, args.ref, args.replace, args.length, None, now)
        _print_client(change.client)
    else:
        if bool(args.refs) == args.all:
            raise TagdError("give client refs or --all (not both)")
        generated, skipped = service.bulk_generate(tx, business_id, args.refs or None, now)
        print(f"generated {generated}, skipped {skipped} (already had an ID)")


def _enrol_code(tx: Tx, business_id: int, args: argparse.Namespace, now: str) -> None:
    location = tx.location_by_name(business_id, args.location)
    if location is None and args.location.isdigit():
        location = tx.location(business_id, int(args.location))
    if location is None:
        raise TagdError(f"no location {args.location!r}")
    code, expires_at = service.issue_enrolment_code(tx, business_id, location.id, timedelta(seconds=args.ttl), now)
    print(f"enrolment code for {location.name}: {code} (expires {expires_at})")


def _checkins(tx: Tx, business_id: int, args: argparse.Namespace, now: str) -> None:
    query = CheckinQuery(canonical_time(args.since) if args.since else None,
                         canonical_time(args.until) if args.until else None, limit=args.limit)
    for c in tx.checkins(business_id, query):
        print(f"{c.scanned_at}\t{c.client_id}\t{c.decision}{' offline' if c.offline else ''}\t{c.result}"
              f"\tlocation {c.location_id}")


COMMANDS = {"clients": _clients, "ids": _ids, "enrol-code": _enrol_code, "checkins": _checkins}

if __name__ == "__main__":
    sys.exit(main())
