"""`/healthz`: is this web process able to serve, and is work flowing? For load balancers and
operators: no login, no secrets, a few milliseconds.

200 when PostgreSQL and Redis answer, else 503. Queue depths, the age of each queue's oldest
job and the workers alive per queue are reported, not judged: a queue without a worker is an
operator's concern (workers may be scaled to zero on purpose), not a reason to take the web
server out of a load balancer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studio.queues import QUEUES

REDIS_TIMEOUT_SECONDS = 1.0


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def database_check() -> dict:
    start = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is "not ok", reported by class only
        return {"ok": False, "error": type(exc).__name__, "latency_ms": _ms(start)}
    return {"ok": True, "latency_ms": _ms(start)}


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def queues_check() -> tuple[dict, dict]:
    """Redis' state and, per queue: jobs waiting, the oldest one's age and live workers."""
    from rq import Queue, Worker

    start = time.perf_counter()
    try:
        conn = _redis()
        conn.ping()
        redis_state = {"ok": True, "latency_ms": _ms(start)}
        now = datetime.now(UTC)
        workers: dict[str, int] = dict.fromkeys(QUEUES, 0)
        for worker in Worker.all(connection=conn):
            for name in worker.queue_names():
                if name in workers:
                    workers[name] += 1
        queues = {}
        for name in QUEUES:
            queue = Queue(name, connection=conn)
            depth = queue.count
            oldest = None
            if depth:
                job_ids = queue.get_job_ids(0, 0)
                job = queue.fetch_job(job_ids[0]) if job_ids else None
                enqueued = job.enqueued_at if job is not None else None
                if enqueued is not None:
                    if enqueued.tzinfo is None:
                        enqueued = enqueued.replace(tzinfo=UTC)
                    oldest = round(max(0.0, (now - enqueued).total_seconds()), 1)
            queues[name] = {
                "depth": depth,
                "oldest_job_age_s": oldest,
                "workers": workers[name],
            }
    except Exception as exc:  # noqa: BLE001 - a Redis outage is the answer, not an error
        return {"ok": False, "error": type(exc).__name__, "latency_ms": _ms(start)}, {}
    return redis_state, queues


def health() -> dict:
    start = time.perf_counter()
    database = database_check()
    redis_state, queues = queues_check()
    ok = database["ok"] and redis_state["ok"]
    return {
        "status": "ok" if ok else "fail",
        "database": database,
        "redis": redis_state,
        "queues": queues,
        "took_ms": _ms(start),
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    body = health()
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
