"""`python manage.py up`: all of Studio on one machine, in the foreground.

manage.py has already started (or attached to) the embedded PostgreSQL and Redis when
DATABASE_URL / REDIS_URL were unset, and put their URLs into os.environ, so every child started
here inherits them and attaches instead of starting servers of its own.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops the children, then the embedded servers this process
started; the data stays under var/ for the next `up`. If a child dies on its own, everything
is shut down and the command exits non-zero: a half-running Studio (a web server whose jobs
never run) is worse than a clear failure.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from studio import embedded
from studio.queues import QUEUES
from studio.services import demo_users_ensure, roles_ensure

# Jobs run inside the worker process (no fork per job): the generation worker keeps its model
# loaded between jobs, and CUDA cannot be used in a child forked after the parent touched it.
WORKER_CLASS = "rq.worker.SimpleWorker"
RECONCILE_EVERY_SECONDS = 60
STOP_GRACE_SECONDS = 10
WEB_READY_SECONDS = 120
WEB_TIMEOUT_SECONDS = 60  # a gunicorn worker silent this long is restarted
_STATIC_STAMP = ".studio-collected"
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: if `up` is killed (even with SIGKILL), the
    kernel sends the child SIGTERM, so no worker outlives it holding jobs and connections."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Command(BaseCommand):
    help = (
        "Run Studio here: migrate, ensure roles and demo users, then the web server, one RQ "
        "worker per queue and the item reconciler, until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")
        parser.add_argument(
            "--no-workers",
            action="store_true",
            help="start no RQ workers (they run elsewhere); the reconciler still runs",
        )

    def execute(self, *args: object, **options: object) -> str | None:
        # manage.py leaves the embedded servers' lifetime to `up`, so they must be stopped
        # also when we fail before handle() runs (a system check error, a bad argument).
        try:
            return super().execute(*args, **options)
        finally:
            embedded.stop(embedded.current())

    def handle(self, *args: object, **options: object) -> None:
        host = str(options["host"])
        port = int(options["port"])  # type: ignore[arg-type]
        self._stopping = threading.Event()
        self._supervising = False
        self._children: list[Child] = []
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        failure: str | None = None
        reconciler: threading.Thread | None = None
        try:
            _check_port_free(host, port)
            self._prepare()
            self._start_children(host, port, workers=not options["no_workers"])
            reconciler = threading.Thread(target=self._reconcile_loop, name="reconciler")
            reconciler.daemon = True
            reconciler.start()
            self._supervising = True
            failure = self._supervise(host, port)
        except KeyboardInterrupt:
            # A signal during start-up (migrate can take a while): shut down what exists.
            self._say("studio: interrupted while starting")
        finally:
            self._stopping.set()
            self._stop_children()
            if reconciler is not None:
                reconciler.join(timeout=STOP_GRACE_SECONDS)
            connections.close_all()
            servers = embedded.current()
            if servers.started_postgres or servers.started_redis:
                self._say("studio: stopping the embedded PostgreSQL and Redis")
            embedded.stop(servers)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failure:
            raise CommandError(failure)
        self._say("studio: stopped")

    # --- start-up --------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        # Flushed at once: under a supervisor or in a log file stdout is block-buffered, and
        # "Studio is running at ..." is what people (and the tests) wait for.
        self.stdout.write(message)
        self.stdout.flush()

    def _warn(self, message: str) -> None:
        self.stderr.write(message)
        self.stderr.flush()

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stopping.is_set():
            return
        self._say(f"\nstudio: {signal.Signals(signum).name} received, shutting down")
        self._stopping.set()
        if not self._supervising:
            # Interrupt a blocking migrate/collectstatic; the finally block cleans up.
            raise KeyboardInterrupt

    def _prepare(self) -> None:
        servers = embedded.current()
        if os.environ.get("STUDIO_EMBEDDED"):
            how = "started" if servers.started_postgres or servers.started_redis else "attached to"
            self._say(f"studio: {how} the embedded PostgreSQL and Redis in {embedded.var_dir()}")
        call_command("migrate", interactive=False, verbosity=0)
        roles_ensure()
        users = demo_users_ensure()
        if settings.DEBUG:
            self._say("studio: demo users (role / username / password):")
            for role, username, password in users:
                self._say(f"  {role:<9} {username:<9} {password}")
            self._say("  (a user whose password was changed keeps the changed one)")
        else:
            names = ", ".join(username for _, username, _ in users)
            self._say(
                f"studio: demo users {names} exist. Set their passwords with "
                "`python manage.py changepassword <username>` (or STUDIO_DEMO_PASSWORD before "
                "the first run)."
            )
        self._collectstatic_if_stale()

    def _collectstatic_if_stale(self) -> None:
        """collectstatic only when the source files changed: it takes seconds (compression),
        while fingerprinting a few hundred files by name, size and mtime takes milliseconds."""
        from django.contrib.staticfiles.finders import get_finders

        digest = hashlib.sha256()
        for finder in get_finders():
            for path, storage in sorted(finder.list([]), key=lambda pair: pair[0]):
                stat = os.stat(storage.path(path))
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        fingerprint = f"{digest.hexdigest()} {settings.STORAGES['staticfiles']['BACKEND']}"
        stamp = Path(settings.STATIC_ROOT) / _STATIC_STAMP
        try:
            if stamp.read_text() == fingerprint:
                return
        except OSError:
            pass
        self._say("studio: collecting static files")
        call_command("collectstatic", interactive=False, verbosity=0)
        stamp.write_text(fingerprint)

    def _start_children(self, host: str, port: int, *, workers: bool) -> None:
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        self._spawn("web", web_command(host, port))
        if workers:
            for queue in QUEUES:
                self._spawn(
                    f"worker-{queue}",
                    [
                        *manage,
                        "rqworker",
                        queue,
                        "--worker-class",
                        WORKER_CLASS,
                        "--with-scheduler",
                    ],
                )

    def _spawn(self, name: str, command: list[str]) -> None:
        process = subprocess.Popen(
            command,
            env=os.environ.copy(),  # holds DATABASE_URL/REDIS_URL: children attach, never start
            cwd=settings.BASE_DIR,
            # Own process group: a terminal's Ctrl-C reaches only `up`, which then stops the
            # children in order; killpg also reaches a worker's forked scheduler process.
            process_group=0,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._children.append(Child(name, process))

    # --- running ---------------------------------------------------------------------------

    def _supervise(self, host: str, port: int) -> str | None:
        """Wait for the web server, announce it, then watch the children until a signal.

        Returns a failure message if a child exited on its own."""
        announced = False
        deadline = time.monotonic() + WEB_READY_SECONDS
        while not self._stopping.is_set():
            for child in self._children:
                code = child.process.poll()
                if code is not None:
                    return (
                        f"{child.name} (pid {child.process.pid}) exited unexpectedly with "
                        f"code {code}; Studio has been shut down"
                    )
            if not announced:
                if _port_answers(host, port):
                    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
                    shown = f"[{shown}]" if ":" in shown else shown
                    self._say(f"Studio is running at http://{shown}:{port}/  (Ctrl-C to stop)")
                    announced = True
                elif time.monotonic() > deadline:
                    return (
                        f"the web server did not answer on {host}:{port} "
                        f"within {WEB_READY_SECONDS} s"
                    )
            self._stopping.wait(0.5 if announced else 0.2)
        return None

    def _reconcile_loop(self) -> None:
        """Re-enqueue items whose lease expired (a lost job, a killed worker, a flushed Redis):
        the database is the source of truth, Redis only carries work."""
        warned = False
        while not self._stopping.is_set():
            try:
                from studio.reconcile import reconcile
            except ImportError as exc:
                if not warned:
                    self._warn(f"studio: reconciler disabled for now: {exc}")
                    warned = True
            else:
                try:
                    counts = reconcile()
                    if isinstance(counts, dict) and any(counts.values()):
                        self._say(f"studio: reconciler: {counts}")
                except Exception as exc:  # noqa: BLE001 - one bad pass must not end the loop
                    self._warn(f"studio: reconciler pass failed: {exc!r}")
                finally:
                    # This thread's own connection: don't hold it idle for a minute.
                    connections.close_all()
            self._stopping.wait(RECONCILE_EVERY_SECONDS)

    def _stop_children(self) -> None:
        alive = [c for c in self._children if c.process.poll() is None]
        for child in alive:
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in alive:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._warn(f"studio: {child.name} did not stop in time; killing it")
        for child in self._children:
            # Also reaps leftovers in the group (a worker's scheduler process).
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def web_command(host: str, port: int) -> list[str]:
    """The web server's command line: Django's development server only with DEBUG on (it
    reloads nothing here, but shows tracebacks); otherwise gunicorn with STUDIO_WEB_WORKERS
    processes of STUDIO_WEB_THREADS threads. whitenoise serves the static files either way."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if settings.DEBUG:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        return [sys.executable, manage, "runserver", "--noreload", address]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "studio.wsgi:application",
        "--bind",
        address,
        "--workers",
        str(settings.STUDIO_WEB_WORKERS),
        "--worker-class",
        "gthread",
        "--threads",
        str(settings.STUDIO_WEB_THREADS),
        "--timeout",
        str(WEB_TIMEOUT_SECONDS),
        "--graceful-timeout",
        str(STOP_GRACE_SECONDS - 2),
        "--access-logfile",
        "-",
    ]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is in use (another `up`?); choose one with --port"
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None


def _port_answers(host: str, port: int) -> bool:
    target = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
    try:
        with socket.create_connection((target, port), timeout=1):
            return True
    except OSError:
        return False
