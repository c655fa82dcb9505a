"""Benchmark: the API under gunicorn on loopback, 20 concurrent clients.

Prints p50/p95 for reading a campaign's status, a catalogue search (the same one repeated,
which the API answers from Redis until an entry changes, and a different one each time, which
reads PostgreSQL every time) and creating a 100-row campaign (goal: p95 under 100 ms for the
reads, under 1 s for the create). The 20 clients are threads of this process on keep-alive
connections (http.client, lighter than requests, so the load generator takes less of the two
cores from the server). Needs
DATABASE_URL (a PostgreSQL server) and REDIS_URL; it creates its own throwaway database
(studio_bench_api), migrates it, seeds a recipe, a template, a token and a few campaigns
(their jobs go to Redis; no worker runs), and drops it at the end unless --keep.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        python bench/api.py [--requests 400] [--clients 20] [--workers 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_DB = "studio_bench_api"
PORT = 8799


def _database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _rows_csv(count: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sku", "product_type", "name", "color", "material"])
    for i in range(count):
        writer.writerow([f"B-{i}", "sneaker", f"Bench {i}", "red", "mesh"])
    return out.getvalue().encode()


def _seed() -> tuple[str, str, int, int]:
    import django

    django.setup()
    from django.contrib.auth.models import User

    from generation.services import (
        base_model_register,
        prompt_template_version_create,
        recipe_create,
    )
    from studio.launch import campaign_launch
    from studio.services import user_role_grant
    from studio.tokens import scopes_allowed, token_create

    user = User.objects.create_user("bench")
    user_role_grant(user=user, role="admin")
    version = prompt_template_version_create(
        name="bench", body="a {color} {material} {product_type}, {name}"
    )
    model = base_model_register(name="bench-sd", source="runwayml/stable-diffusion-v1-5")
    recipe = recipe_create(name="bench", base_model=model, steps=2, width=64, height=64)
    campaign = None
    for n in range(5):
        campaign = campaign_launch(
            name=f"bench {n}",
            template_version=version,
            recipe=recipe,
            csv_bytes=_rows_csv(100),
            csv_filename="bench.csv",
            user=user,
        )
    from catalogue.services import entries_sync
    from generation.models import Item

    entries_sync(item_ids=[str(pk) for pk in Item.objects.values_list("pk", flat=True)])
    _token, secret = token_create(user=user, name="bench", scopes=scopes_allowed(user))
    return secret, str(campaign.pk), version.pk, recipe.pk


class _Client:
    """One client: a keep-alive connection, a GET or a multipart POST, and its timing."""

    def __init__(self, token: str) -> None:
        import http.client

        self.connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}

    def call(self, method: str, path: str, body: bytes | None = None, **headers) -> float:
        started = time.perf_counter()
        self.connection.request(method, path, body=body, headers=self.headers | headers)
        response = self.connection.getresponse()
        content = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status >= 400:
            raise RuntimeError(f"{response.status}: {content[:300]!r}")
        if (response.getheader("Connection") or "").lower() == "close":
            self.connection.close()
        return elapsed


def _multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes):
    boundary = "studio-bench-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _run(call, *, requests_total: int, clients: int, token: str) -> list[float]:
    import threading

    local = threading.local()

    def one(n: int) -> float:
        if not hasattr(local, "client"):
            local.client = _Client(token)
        return call(local.client, n)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(requests_total)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per read scenario")
    parser.add_argument("--creates", type=int, default=60, help="100-row campaigns created")
    parser.add_argument("--clients", type=int, default=20)
    # The defaults are `manage.py up`'s (STUDIO_WEB_WORKERS, STUDIO_WEB_THREADS).
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    admin_url = os.environ["DATABASE_URL"]
    env = os.environ | {
        "DATABASE_URL": _database_url(admin_url, BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret"),
        "DEBUG": "false",
        "STUDIO_API_RATE_LIMIT": "1000000",
        "STUDIO_MEDIA_ROOT": "/tmp/studio-bench-api-media",
    }
    subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {BENCH_DB}"], check=True)
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {BENCH_DB}"], check=True)
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True
        )
        os.environ.update(env)
        token, campaign, template, recipe = _seed()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "studio.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--worker-class",
                "gthread",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        base = "/api/v1"
        for _ in range(100):
            try:
                _Client(token).call("GET", f"{base}/openapi.json")
                break
            except OSError:
                time.sleep(0.2)
        body, content_type = _multipart(
            {"name": "b", "template": str(template), "recipe": str(recipe)},
            "csv_file",
            "b.csv",
            _rows_csv(100),
        )
        scenarios = {
            "campaign status (GET /campaigns/{id})": (
                lambda c, n: c.call("GET", f"{base}/campaigns/{campaign}"),
                args.requests,
            ),
            "catalogue search, repeated (GET /catalogue/search?q=sneaker)": (
                lambda c, n: c.call("GET", f"{base}/catalogue/search?q=sneaker"),
                args.requests,
            ),
            # The same 500 matches and facets, but a question never asked before: nothing kept.
            "catalogue search, new each time (q=sneaker -nomatchN)": (
                lambda c, n: c.call("GET", f"{base}/catalogue/search?q=sneaker+-nomatch{n}"),
                args.requests,
            ),
            "create a 100-row campaign (POST /campaigns/csv)": (
                lambda c, n: c.call(
                    "POST", f"{base}/campaigns/csv", body, **{"Content-Type": content_type}
                ),
                args.creates,
            ),
        }
        print(f"gunicorn {args.workers} workers x {args.threads} threads, {args.clients} clients")
        print(f"{'scenario':<62} {'n':>5} {'p50 ms':>8} {'p95 ms':>8}")
        for name, (call, count) in scenarios.items():
            # Warm up (every server thread opens its database connection) with questions of
            # their own, so the new-each-time search stays new.
            warm = min(count, args.clients * 3)
            _run(
                lambda c, n, call=call: call(c, n + 10**6),
                requests_total=warm,
                clients=args.clients,
                token=token,
            )
            times = sorted(_run(call, requests_total=count, clients=args.clients, token=token))
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(f"{name:<62} {len(times):>5} {statistics.median(times):>8.1f} {p95:>8.1f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {BENCH_DB}"])


if __name__ == "__main__":
    main()
