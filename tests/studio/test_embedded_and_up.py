"""`manage.py up` and the embedded servers, end to end, as real processes.

Each test gets its own STUDIO_VAR_DIR and runs without DATABASE_URL/REDIS_URL, so manage.py
starts (or attaches to) a private embedded PostgreSQL and Redis there. No `db` fixture: the
processes under test own their database.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
QUEUES = {"generation", "quality", "delivery"}
START_TIMEOUT = 120


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Not tmp_path: another pytest session of the same user prunes old basetemp directories
    # at start, and this one must not vanish under a running PostgreSQL. Shorter, too (the
    # sockets live in here and AF_UNIX paths are limited).
    root = Path(tempfile.mkdtemp(prefix="studio-up-test-"))
    var = root / "var"
    try:
        yield var
    finally:
        # Whatever a failed test left behind: processes that mention this var dir
        # (postgres -D <var>/postgres, redis-server unixsocket:<var>/redis/redis.sock).
        for proc in _server_processes(var):
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def _env(var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # pytest-env fills these in for the test process; the processes under test must use
        # the embedded servers instead.
        if key not in {"DATABASE_URL", "REDIS_URL", "STUDIO_EMBEDDED"}
    }
    env.update(
        STUDIO_VAR_DIR=str(var),
        STUDIO_STATIC_ROOT=str(var / "static"),
        STUDIO_MEDIA_ROOT=str(var / "media"),
        DEBUG="true",
        PYTHONUNBUFFERED="1",
    )
    env.pop("STUDIO_DEMO_PASSWORD", None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_processes(var: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.pid != os.getpid() and any(str(var) in part for part in cmdline):
            found.append(proc)
    return found


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _python(env: dict[str, str], code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Up:
    """A running `manage.py up`, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = _free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(self.port), *args],
            cwd=REPO,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"up exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "accounts/login/", timeout=5) as resp:
                    # up announces itself once it sees the port answer: that may come a
                    # moment after our own first answer.
                    if resp.status == 200 and "Studio is running at" in self.output():
                        return
            except (urllib.error.URLError, OSError) as exc:
                last_error = exc
            time.sleep(0.5)
        pytest.fail(f"login page never answered ({last_error}):\n{self.output()}")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"up did not stop within 60 s:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            for child in self.children():
                child.kill()
            self.process.kill()
            self.process.wait()


def _wait_for_workers(var: Path) -> list:
    from rq import Worker

    connection = redis.Redis(unix_socket_path=str(var / "redis" / "redis.sock"))
    deadline = time.monotonic() + 60
    workers: list = []
    while time.monotonic() < deadline:
        workers = Worker.all(connection=connection)
        if {queue for worker in workers for queue in worker.queue_names()} >= QUEUES:
            return workers
        time.sleep(0.5)
    pytest.fail(f"workers for {QUEUES} never registered; have {workers}")


def _log_in(base_url: str, username: str, password: str) -> int:
    """POST the login form like a browser; the status of the response (302 = logged in)."""
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(base_url + "accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "login page has no CSRF token"
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
    ).encode()
    request = urllib.request.Request(
        base_url + "accounts/login/", data=form, headers={"Referer": base_url}
    )
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _assert_all_gone(var: Path, pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)]
        if not alive and not _server_processes(var):
            break
        time.sleep(0.2)
    assert [pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)] == []
    assert _server_processes(var) == []
    assert not (var / "postgres" / "postmaster.pid").exists()
    assert not (var / "redis" / "redis.sock").exists()


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_runs_studio_stops_cleanly_and_comes_back_with_its_data(var_dir: Path) -> None:
    env = _env(var_dir)
    up = Up(env, var_dir.parent / "up-1.log")
    try:
        up.wait_until_serving()
        output = up.output()
        assert f"Studio is running at {up.url}" in output
        assert re.search(r"admin\s+admin\s+studio-demo", output), output  # DEBUG shows them

        workers = _wait_for_workers(var_dir)
        assert {q for w in workers for q in w.queue_names()} == QUEUES
        worker_commands = [
            " ".join(child.cmdline()) for child in up.children() if "rqworker" in child.cmdline()
        ]
        assert worker_commands, "no rqworker children"
        # No fork per job: the generation worker keeps its model loaded between jobs.
        assert all("--worker-class rq.worker.SimpleWorker" in cmd for cmd in worker_commands)

        assert _log_in(up.url, "creative", "studio-demo") == 302
        assert _log_in(up.url, "creative", "wrong-password") == 200

        # A one-off command attaches to the running servers (and must leave them running).
        _manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User; "
            "Group.objects.create(name='marker-from-first-run'); "
            "u = User.objects.get(username='creative'); u.set_password('changed-pw-42'); u.save()",
        )
        redis.Redis(unix_socket_path=str(var_dir / "redis" / "redis.sock")).set(
            "studio-test-marker", "kept"
        )
        assert _log_in(up.url, "creative", "changed-pw-42") == 302

        child_pids = [child.pid for child in up.children()]
        assert up.stop(signal.SIGINT) == 0, up.output()
        assert "studio: stopped" in up.output()
        _assert_all_gone(var_dir, child_pids)
    finally:
        up.kill()

    again = Up(env, var_dir.parent / "up-2.log")
    try:
        again.wait_until_serving()
        assert "started the embedded PostgreSQL and Redis" in again.output()
        check = _manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User; "
            "print(Group.objects.filter(name='marker-from-first-run').exists(), "
            "User.objects.get(username='creative').check_password('changed-pw-42'))",
        )
        # The row survived, and up did not reset the changed demo password.
        assert check.stdout.split()[-2:] == ["True", "True"], check.stdout + check.stderr
        kept = redis.Redis(unix_socket_path=str(var_dir / "redis" / "redis.sock")).get(
            "studio-test-marker"
        )
        assert kept == b"kept"  # the append-only file brought Redis' data back

        # A child that dies on its own takes everything down, with a non-zero exit.
        _wait_for_workers(var_dir)
        children = again.children()
        quality = next(c for c in children if "quality" in c.cmdline())
        quality.kill()
        assert again.process.wait(timeout=60) != 0
        assert "exited unexpectedly" in again.output()
        _assert_all_gone(var_dir, [child.pid for child in children])
    finally:
        again.kill()


def test_up_without_debug_serves_through_gunicorn_and_answers_healthz(var_dir: Path) -> None:
    env = _env(var_dir)
    env.update(DEBUG="false", STUDIO_WEB_WORKERS="2")
    up = Up(env, var_dir.parent / "up-prod.log", "--no-workers")
    try:
        up.wait_until_serving()
        commands = [" ".join(child.cmdline()) for child in up.children()]
        assert any("gunicorn studio.wsgi:application" in c and "--workers 2" in c for c in commands)
        assert not any("runserver" in c for c in commands), commands
        with urllib.request.urlopen(up.url + "healthz", timeout=10) as resp:
            body = json.loads(resp.read())
            assert resp.status == 200
        assert body["database"]["ok"] and body["redis"]["ok"]
        # whitenoise serves the collected static files under gunicorn as well.
        with urllib.request.urlopen(up.url + "static/studio/studio.js", timeout=10) as resp:
            assert resp.status == 200
        child_pids = [child.pid for child in up.children()]
        assert up.stop(signal.SIGTERM) == 0, up.output()
        _assert_all_gone(var_dir, child_pids)
    finally:
        up.kill()


def test_up_refuses_a_port_that_is_taken_and_stops_what_it_started(var_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(port)],
            cwd=REPO,
            env=_env(var_dir),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    assert result.returncode != 0
    assert f"port {port}" in result.stderr, result.stdout + result.stderr
    _assert_all_gone(var_dir, [])


def test_a_one_off_command_that_started_the_servers_stops_them_at_exit(var_dir: Path) -> None:
    env = _env(var_dir)
    _manage(env, "check", "--database", "default")
    assert (var_dir / "postgres" / "PG_VERSION").exists()
    _assert_all_gone(var_dir, [])


def test_a_command_attaches_to_running_servers_and_the_starter_waits_for_it(
    var_dir: Path,
) -> None:
    env = _env(var_dir)
    code = (
        "import os, sys\n"
        "from studio import embedded\n"
        "servers = embedded.ensure_environment()\n"
        "if sys.argv[1:] == ['stop-at-exit']: embedded.stop_at_exit(servers)\n"
        "print(servers.started_postgres, servers.started_redis, os.environ['DATABASE_URL'],"
        " os.environ['REDIS_URL'], flush=True)\n"
        "input()\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", code, "stop-at-exit"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    attached: subprocess.Popen[str] | None = None
    try:
        started = starter.stdout.readline().split()  # type: ignore[union-attr]
        assert started[:2] == ["True", "True"], starter.stderr.read()  # type: ignore[union-attr]
        attached = _python(env, code)  # only now: it must find the servers running
        joined = attached.stdout.readline().split()  # type: ignore[union-attr]
        assert joined[:2] == ["False", "False"], attached.stderr.read()  # type: ignore[union-attr]
        assert joined[2:] == started[2:]  # the same servers

        # The starter ends first: its neighbour still uses the servers, so they stay.
        _, starter_err = starter.communicate("\n", timeout=60)
        assert starter.returncode == 0, starter_err
        assert "leaving the embedded PostgreSQL/Redis running" in starter_err
        assert len(_server_processes(var_dir)) == 2

        # The one that only attached never stops them.
        attached.communicate("\n", timeout=60)
        assert attached.returncode == 0
        assert len(_server_processes(var_dir)) == 2
    finally:
        for proc in (starter, attached):
            if proc is not None and proc.poll() is None:
                proc.kill()
    stopper = _python(
        env,
        "from studio import embedded\n"
        "embedded.stop(embedded.EmbeddedServers(started_postgres=True, started_redis=True))\n",
    )
    stopper.communicate(timeout=60)
    assert stopper.returncode == 0
    _assert_all_gone(var_dir, [])
