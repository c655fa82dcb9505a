"""A Redis database of its own for each pytest-xdist worker (loaded with ``-p`` in pyproject's
addopts, so before pytest-env and Django's settings read REDIS_URL).

PostgreSQL needs nothing: pytest-django names each worker's test database test_<name>_gw<n>.
Redis keys (rate limits, sign-in throttles, stamps, queued jobs) would be shared between
workers, and a test that empties its database would empty the other worker's too: worker n
takes database 13 - n (13, 12, …; `make test` runs TEST_WORKERS, at most 8, of them).
"""

from __future__ import annotations

import os

MAX_WORKERS = 8


def _per_worker(url: str, worker: str) -> str:
    n = int(worker.removeprefix("gw"))
    if n >= MAX_WORKERS:
        raise RuntimeError(f"at most {MAX_WORKERS} test workers share one Redis")
    base, _, database = url.rpartition("/")
    return f"{base}/{int(database or 0) - n}"


_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker:
    os.environ["REDIS_URL"] = _per_worker(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"), _worker
    )
