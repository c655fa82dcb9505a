"""Handing queued items to the generation stage: one job per batch of items that share a
pipeline call, in priority order."""

from __future__ import annotations

import uuid

from generation.batching import batch_key, batch_size_for
from generation.models import Backend, Item, Priority, Purpose
from studio import queues


def items_dispatch(items: list[Item], *, priority: str = Priority.NORMAL) -> None:
    """Group items into batches (one generation job each), set each item's ``job_id`` (on the
    instances: the caller saves them) and enqueue the jobs when the transaction commits.

    A batch holds items that share recipe and size, up to the backend's batch size, so it is
    one pipeline call. Hero items and high-priority campaigns go to the front of the queue.
    """
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(batch_key(item), []).append(item)
    batches: list[tuple[str, list[str], bool]] = []
    for group in groups.values():
        size = batch_size_for(group[0].params.get("backend", Backend.DIFFUSERS))
        front = priority == Priority.HIGH or group[0].purpose == Purpose.HERO
        for start in range(0, len(group), size):
            job_id = f"generate-{uuid.uuid4()}"
            batch = group[start : start + size]
            for item in batch:
                item.job_id = job_id
            batches.append((job_id, [str(item.pk) for item in batch], front))
    # Front jobs are pushed one by one to the head, so push them in reverse to keep order.
    ordered = [b for b in batches if not b[2]] + [b for b in reversed(batches) if b[2]]
    queues.enqueue_jobs(
        "generate", [queues.Job(ids, job_id, front) for job_id, ids, front in ordered]
    )


def items_redispatch(items: list[Item]) -> None:
    """New jobs for items already saved as queued (resume, retry, reconcile); call inside a
    transaction. Each campaign keeps its priority."""
    by_priority: dict[str, list[Item]] = {}
    for item in items:
        by_priority.setdefault(item.campaign.priority, []).append(item)
    for priority, group in by_priority.items():
        items_dispatch(group, priority=priority)
    jobs: dict[str, list] = {}
    for item in items:
        jobs.setdefault(item.job_id, []).append(item.pk)
    for job_id, pks in jobs.items():
        Item.objects.filter(pk__in=pks, status=Item.Status.QUEUED).update(job_id=job_id)
