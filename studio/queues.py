"""The stages of the line and the one way to hand work to a stage.

A stage names its queue and its job as a dotted path, so an upstream app starts the next stage
without importing it (RQ imports the job in the worker). This module imports no app.

Enqueueing always waits for the surrounding transaction to commit (``transaction.on_commit``;
django-rq's own commit mode is off, see settings.RQ): a worker must never see an id whose row
is not committed yet, and a rolled-back write enqueues nothing. If Redis is down at commit the
job is lost but the row is not: the reconciler finds it from the database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connections, transaction

GENERATION = "generation"
QUALITY = "quality"
DELIVERY = "delivery"
QUEUES = (GENERATION, QUALITY, DELIVERY)


@dataclass(frozen=True)
class Stage:
    queue: str
    job: str  # dotted path of a function that takes a list of ids
    timeout_setting: str  # the settings name holding the job timeout (seconds)
    retries: tuple[int, ...]  # seconds between RQ retries; one entry per retry
    failure_ttl: int = 7 * 24 * 3600


STAGES: dict[str, Stage] = {
    # Items in, generated PNGs out (GPU workers, SimpleWorker: the model stays in memory).
    "generate": Stage(
        GENERATION, "generation.jobs.generate_items", "JOB_TIMEOUT_GENERATION", (10, 60)
    ),
    # Generated items in, a verdict out: approved, review or rejected.
    "score": Stage(QUALITY, "review.jobs.score_items", "JOB_TIMEOUT_QUALITY", (5, 30, 120)),
    # Items whose approval changed: the catalogue publishes, restores or withdraws their asset.
    # Items whose facts changed (created, generated, scored, decided): the catalogue's entry
    # for each is brought in step, so search covers every image whatever its status.
    "index": Stage(DELIVERY, "catalogue.jobs.index_items", "JOB_TIMEOUT_DELIVERY", (5, 30, 120)),
    "deliver": Stage(DELIVERY, "catalogue.jobs.sync_assets", "JOB_TIMEOUT_DELIVERY", (5, 30, 120)),
    # Webhook deliveries: each job sends the ones it names; a failed send is scheduled again by
    # studio.webhooks itself (backoff over 24 h), so RQ retries only a lost job.
    "notify": Stage(DELIVERY, "studio.webhooks.deliveries_send", "JOB_TIMEOUT_DELIVERY", (30,)),
    # One catalogue export per job: a zip of renditions and manifests streamed to storage.
    "export": Stage(DELIVERY, "catalogue.jobs.build_export", "JOB_TIMEOUT_EXPORT", (30, 120)),
}


@dataclass(frozen=True)
class Job:
    ids: list[str]
    job_id: str | None = None
    at_front: bool = False


def enqueue(
    stage: str, ids, *, job_id: str | None = None, at_front: bool = False, delay: int = 0
) -> None:
    """Hand ``ids`` (one id or a list) to ``stage`` once the current transaction commits;
    ``delay`` seconds later when given (RQ's scheduler, which ``up`` starts with each worker)."""
    ids = [str(pk) for pk in (ids if isinstance(ids, list | tuple) else [ids])]
    if ids:
        _on_commit(STAGES[stage], [Job(ids, job_id, at_front)], delay=delay)


def enqueue_jobs(stage: str, jobs: list[Job]) -> None:
    """Several jobs for ``stage``, in this order, once the current transaction commits: one
    Redis round trip for all of them (a 100-row campaign is some 25 generation jobs)."""
    jobs = [Job([str(pk) for pk in job.ids], job.job_id, job.at_front) for job in jobs if job.ids]
    if jobs:
        _on_commit(STAGES[stage], jobs)


def _on_commit(spec: Stage, jobs: list[Job], *, delay: int = 0) -> None:
    transaction.on_commit(lambda: _push(spec, jobs, delay=delay))


def _push(spec: Stage, jobs: list[Job], *, delay: int = 0) -> None:
    """The one seam between Studio and RQ (tests replace it to run a stage inline)."""
    from datetime import timedelta

    import django_rq
    from django.conf import settings
    from rq import Queue, Retry

    queue = django_rq.get_queue(spec.queue)
    timeout = getattr(settings, spec.timeout_setting)

    def retry() -> Retry:
        return Retry(max=len(spec.retries), interval=list(spec.retries))

    if delay > 0:
        for job in jobs:
            queue.enqueue_in(
                timedelta(seconds=delay),
                spec.job,
                job.ids,
                job_id=job.job_id,
                job_timeout=timeout,
                retry=retry(),
                failure_ttl=spec.failure_ttl,
            )
        return
    queue.enqueue_many(
        [
            Queue.prepare_data(
                spec.job,
                (job.ids,),
                timeout=timeout,
                failure_ttl=spec.failure_ttl,
                job_id=job.job_id,
                at_front=job.at_front,
                retry=retry(),
            )
            for job in jobs
        ]
    )


def fresh_connections(job):
    """Decorate an RQ job function: database connections that died since the last job (a
    PostgreSQL restart, a dropped link) are closed before it runs and after it fails.

    A worker is not a request: Django's request signals never run there, so without this a
    worker keeps its dead connection and fails every job until it is restarted. Connections
    inside a transaction (a test calling the job directly) are left alone."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        _close_unusable()
        try:
            return job(*args, **kwargs)
        finally:
            _close_unusable()

    return run


def _close_unusable() -> None:
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def connection():
    """The Redis connection the queues use (job lookups by the reconciler)."""
    import django_rq

    return django_rq.get_connection(GENERATION)
