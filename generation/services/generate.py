"""The generation job's service: claim items, run them on their backend batch by batch,
store each PNG with its metadata, cost and timing."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generation.batching import batch_key, batch_size_for
from generation.costs import charges_detail, image_charges
from generation.metadata import png_with_metadata
from generation.models import Campaign, Item
from generation.services.budgets import budgets_reserve
from generation.services.ledger import item_charges_record
from generation.services.status import campaign_complete_if_done, items_announce
from studio import queues

logger = logging.getLogger(__name__)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(item_ids: list[str]) -> list[Item]:
    """Claim queued items of running campaigns (conditional update): a second run of the same
    job claims nothing, and items of a paused or cancelled campaign are left alone.

    Budgets first (generation.services.budgets): a campaign whose spend, with the work in
    flight, reached its cap or the month's budget is paused under a row lock held until this
    claim commits, so its items are not claimed."""
    now = timezone.now()
    with transaction.atomic():
        budgets_reserve(item_ids=item_ids)
        ids = list(
            Item.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk__in=item_ids,
                status=Item.Status.QUEUED,
                campaign__status=Campaign.Status.RUNNING,
            )
            .values_list("pk", flat=True)
        )
        Item.objects.filter(pk__in=ids).update(
            status=Item.Status.RUNNING,
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=settings.STUDIO_ITEM_LEASE_SECONDS),
            worker=_worker_name(),
            worker_host=socket.gethostname(),
            started_at=now,
            error="",
        )
        items_announce(item_ids=ids)
    return list(Item.objects.filter(pk__in=ids).select_related("base_model", "campaign"))


def items_requeue_or_fail(*, items: list[Item], message: str, retryable: bool) -> bool:
    """Put running items back to queued for another attempt, or fail them (a permanent error,
    or the last attempt). Returns True when at least one item will be tried again."""
    again = False
    now = timezone.now()
    for item in items:
        final = not retryable or item.attempts >= settings.STUDIO_MAX_ATTEMPTS
        Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.FAILED if final else Item.Status.QUEUED,
            error=message[:4000],
            lease_until=None,
            queued_at=None if final else now,
            finished_at=now if final else None,
        )
        again = again or not final
    items_announce(item_ids=[item.pk for item in items])
    for campaign_id in {item.campaign_id for item in items}:
        campaign_complete_if_done(campaign_id=campaign_id)
    return again


def items_generate(*, item_ids: list[str]) -> int:
    """Generate the claimed items, one backend call per batch; returns how many images were made.

    Items that share base model, LoRAs and parameters (recipe and size) run together, up to
    the backend's batch size. A retryable backend error puts a batch back to queued (until
    STUDIO_MAX_ATTEMPTS) and, once the other batches are done, re-raises so RQ's Retry runs
    the job again; a permanent one fails the batch's items with the provider's message.
    """
    items = _claim(item_ids)
    if not items:
        return 0
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(batch_key(item), []).append(item)
    made, retry = 0, None
    for group in groups.values():
        size = batch_size_for(group[0].base_model.backend)
        for start in range(0, len(group), size):
            count, error = _generate_batch(group[start : start + size])
            made += count
            retry = retry or error
    if retry is not None:
        raise retry
    return made


def _generate_batch(batch: list[Item]) -> tuple[int, Exception | None]:
    from generation.backends import BackendError, get_backend
    from generation.backends.requests import image_request, lora_specs, model_spec

    head = batch[0]
    try:
        backend = get_backend(head.base_model.backend)
        started = time.monotonic()
        results = backend.generate(
            model_spec(head.base_model), lora_specs(head.loras), [image_request(i) for i in batch]
        )
        logger.info("generated %d images in %.2fs", len(results), time.monotonic() - started)
    except BackendError as exc:
        again = items_requeue_or_fail(items=batch, message=str(exc), retryable=exc.retryable)
        return 0, exc if again else None
    except Exception as exc:
        logger.exception("generation failed")
        again = items_requeue_or_fail(
            items=batch, message=f"{type(exc).__name__}: {exc}", retryable=True
        )
        return 0, exc if again else None
    stored = []
    for item, result in zip(batch, results, strict=True):
        if result.image is None:
            _fail_filtered(item, result)
        elif _store_generated(item, result):
            stored.append(item.pk)
    if stored:
        # One scoring job per batch, so CLIP embeds the batch's images together.
        queues.enqueue("score", stored)
    return len(stored), None


def _timing(item: Item, result) -> dict:
    queued_from = item.queued_at or item.created_at
    return {
        "duration_s": result.duration_s,
        "queued_s": max(0.0, (item.started_at - queued_from).total_seconds())
        if item.started_at
        else None,
    }


def _record_cost(item: Item, charges) -> None:
    """The image's charges into the ledger, which keeps Item.cost.

    Keyed by the attempt: the same attempt is never recorded twice, and a second attempt
    (the first one's lease expired while it ran) is a cost of its own."""
    item_charges_record(
        item=item, charges=charges, source=f"attempt-{item.attempts}", host=item.worker_host
    )


def _fail_filtered(item: Item, result) -> None:
    """The provider refused this one image (content filter): final, with its reason and cost."""
    charges = image_charges(item=item, result=result)
    with transaction.atomic():
        Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.FAILED,
            error=result.error[:4000],
            cost_detail=charges_detail(charges),
            run={"provider": result.extra} if result.extra else {},
            lease_until=None,
            finished_at=timezone.now(),
            **_timing(item, result),
        )
        _record_cost(item, charges)
    items_announce(item_ids=[item.pk])
    campaign_complete_if_done(campaign_id=item.campaign_id)


def _store_generated(item: Item, result) -> bool:
    """Store the PNG and move the item on to scoring; False if the item was handed on."""
    data = png_with_metadata(result.image, item)
    name = default_storage.save(f"items/{item.campaign_id}/{item.pk}.png", ContentFile(data))
    # Unless made batch-invariant, exact pixels depend on the batch size (kernel choice), so
    # reproduction needs both.
    run = {"batch_size": result.batch_size, "batch_invariant": result.batch_invariant}
    if result.extra:
        run["provider"] = result.extra
    charges = image_charges(item=item, result=result)
    with transaction.atomic():
        # Fenced by the attempt: a worker whose lease expired (the item was claimed again)
        # must not commit over the attempt that now owns the item.
        updated = Item.objects.filter(
            pk=item.pk, status=Item.Status.RUNNING, attempts=item.attempts
        ).update(
            status=Item.Status.SCORING,
            image=name,
            run=run,
            cost_detail=charges_detail(charges),
            worker=f"{_worker_name()} ({result.device})",
            generated_at=timezone.now(),
            lease_until=None,
            **_timing(item, result),
        )
        # Spent whether or not the item is still ours; recorded after the status change, so
        # the budget check does not count it both as spent and as in flight.
        _record_cost(item, charges)
        if updated:
            items_announce(item_ids=[item.pk])
            if item.attempts > 1:
                transaction.on_commit(lambda: _delete_earlier_attempts(item, keep=name))
        else:
            # The lease expired and the reconciler handed the item on: drop our copy.
            transaction.on_commit(lambda: default_storage.delete(name))
    return bool(updated)


def _delete_earlier_attempts(item: Item, *, keep: str) -> None:
    """Files an earlier attempt stored but never committed (its worker was killed between
    writing the PNG and its commit): the fence above means they can never be committed now."""
    folder = f"items/{item.campaign_id}"
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return
    for filename in files:
        name = f"{folder}/{filename}"
        if filename.startswith(str(item.pk)) and name != keep:
            default_storage.delete(name)
