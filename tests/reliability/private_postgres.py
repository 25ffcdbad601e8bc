"""A PostgreSQL server of the test's own, to stop and restart at will.

The machine's shared PostgreSQL serves other tests at the same time, so a fault
test never restarts it: it runs a throwaway cluster (initdb + pg_ctl from Debian's
postgresql package) on a free port in a temporary directory, with trust
authentication on loopback only. PostgreSQL refuses to run as root, so as root the
cluster belongs to the `postgres` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from mercato_ops.testnet import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _bin(name: str) -> str:
    for directory in BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} not found: install Debian's postgresql package")
    return found


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mercato-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._owner: str | None = None
        if os.geteuid() == 0:
            self._owner = "postgres"
            owner = pwd.getpwnam(self._owner)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.server_url}/{database}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        if self._owner:
            argv = ("runuser", "-u", self._owner, "--", *argv)
        done = subprocess.run(argv, capture_output=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                                 f"{done.stdout.decode(errors='replace')}"
                                 f"{done.stderr.decode(errors='replace')}")
        return done

    def _pg_ctl(self, action: str, *extra: str, check: bool = True) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=50")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, action, *extra, check=check)

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._pg_ctl("restart", "-m", mode)

    def create_database(self, name: str) -> None:
        self._run(_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-c", f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        self._pg_ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
