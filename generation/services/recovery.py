"""Recovery: work lost with a worker or with Redis, found from the database and enqueued again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.models import Campaign, Item
from generation.services.dispatch import items_redispatch
from generation.services.generate import items_requeue_or_fail
from studio import queues


def items_reconcile() -> dict[str, int]:
    """Re-enqueue work lost with a worker or with Redis, from the database's point of view.

    - running items whose lease expired go back to queued (or fail after the last attempt);
    - queued items whose RQ job no longer exists (or failed for good) get a new job;
    - items stuck in scoring are handed to the scoring stage again (its job is idempotent).

    The catalogue reconciles its own assets (catalogue.services.assets_reconcile); both run
    from studio.reconcile.
    """
    from rq.job import Job, JobStatus

    now = timezone.now()
    counts = {"expired": 0, "requeued": 0, "rescored": 0}
    expired = list(
        Item.objects.filter(status=Item.Status.RUNNING, lease_until__lt=now).select_related(
            "base_model", "campaign"
        )
    )
    if expired:
        items_requeue_or_fail(items=expired, message="the worker's lease expired", retryable=True)
        counts["expired"] = len(expired)

    connection = queues.connection()
    grace = now - timedelta(seconds=settings.STUDIO_RECONCILE_GRACE_SECONDS)
    # Items of paused campaigns wait for campaign_resume, which enqueues them itself.
    queued = list(
        Item.objects.filter(
            status=Item.Status.QUEUED,
            created_at__lt=grace,
            campaign__status=Campaign.Status.RUNNING,
        ).values_list("pk", "job_id")
    )
    job_ids = sorted({job_id for _, job_id in queued if job_id})
    alive: set[str] = set()
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        for job_id, job in zip(chunk, Job.fetch_many(chunk, connection=connection), strict=True):
            if job is not None and job.get_status(refresh=False) in {
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.SCHEDULED,
                JobStatus.DEFERRED,
            }:
                alive.add(job_id)
    lost = [str(pk) for pk, job_id in queued if job_id not in alive]
    with transaction.atomic():
        items_redispatch(list(Item.objects.filter(pk__in=lost).select_related("campaign")))
    counts["requeued"] = len(lost)

    stale = now - timedelta(seconds=2 * settings.JOB_TIMEOUT_QUALITY)
    stuck = list(
        Item.objects.filter(status=Item.Status.SCORING, generated_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    for start in range(0, len(stuck), 50):
        queues.enqueue("score", stuck[start : start + 50])
    counts["rescored"] = len(stuck)
    return counts
