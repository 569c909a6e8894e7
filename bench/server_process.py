"""The reference server in its own process, as in production: the bench's readers never share its interpreter,
its GIL or its memory figures.

`python -m bench.server_process DB` serves DB on a free loopback port, prints the URL on one line and serves until
its stdin closes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A started `bench.server_process`; `url`, and `stop()` (also on leaving a `with` block)."""

    def __init__(self, db_path: str):
        self.process = subprocess.Popen([sys.executable, "-m", "bench.server_process", db_path], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the reference server did not start (got {self.url!r})")

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as file:
            fields = file.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(db_path: str) -> None:
    from server.embedded import start_server

    logging.basicConfig(level=logging.WARNING)
    with start_server(db_path) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the bench closes our stdin (or dies)


if __name__ == "__main__":
    main(sys.argv[1])
