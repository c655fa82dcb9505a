"""Campaign controls (pause, resume, cancel, retry, priority) and exact item reproduction."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from generation.models import Campaign, Item, Priority
from generation.services.budgets import budget_resume_check
from generation.services.dispatch import items_redispatch
from generation.services.status import (
    campaign_complete_if_done,
    campaign_reopen,
    campaign_transition,
    items_announce,
)
from studio.errors import InputError

ACTIONS = ("pause", "resume", "cancel", "retry")


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Stop handing out work: queued items stay queued (jobs skip them), running ones finish."""
    campaign_transition(campaign=campaign, action="pause")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Run a paused campaign again: its queued items get new jobs after commit.

    Refused (InputError "budget") while its cap or this month's budget is reached."""
    if campaign.status == Campaign.Status.PAUSED:
        budget_resume_check(campaign=campaign)
    campaign_transition(campaign=campaign, action="resume")
    queued = list(
        Item.objects.select_for_update(of=("self",))
        .filter(campaign=campaign, status=Item.Status.QUEUED)
        .select_related("campaign")
    )
    Item.objects.filter(pk__in=[i.pk for i in queued]).update(queued_at=timezone.now())
    items_redispatch(queued)
    campaign_complete_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db(fields=["status", "finished_at"])
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> int:
    """Cancel a running or paused campaign: queued items are cancelled (returns how many);
    items being generated finish and go on to scoring."""
    campaign_transition(campaign=campaign, action="cancel")
    queued = Item.objects.filter(campaign=campaign, status=Item.Status.QUEUED)
    ids = list(queued.values_list("pk", flat=True))
    count = queued.filter(pk__in=ids).update(
        status=Item.Status.CANCELLED, finished_at=timezone.now(), lease_until=None
    )
    items_announce(item_ids=ids)
    return count


@transaction.atomic
def campaign_retry_failed(*, campaign: Campaign) -> int:
    """Queue the campaign's failed items again (fresh attempts); returns how many.

    A completed campaign runs again; a paused one keeps them queued until it is resumed.
    """
    if campaign.status == Campaign.Status.CANCELLED:
        raise InputError("campaign", "cannot retry items of a cancelled campaign")
    failed = list(
        Item.objects.select_for_update(of=("self",))
        .filter(campaign=campaign, status=Item.Status.FAILED)
        .select_related("campaign")
    )
    if not failed:
        raise InputError("campaign", "has no failed items to retry")
    Item.objects.filter(pk__in=[i.pk for i in failed]).update(
        status=Item.Status.QUEUED,
        attempts=0,
        error="",
        finished_at=None,
        queued_at=timezone.now(),
    )
    items_announce(item_ids=[item.pk for item in failed])
    campaign_reopen(campaign_id=campaign.pk)
    campaign.refresh_from_db(fields=["status", "finished_at"])
    if campaign.status == Campaign.Status.RUNNING:
        for item in failed:
            item.status = Item.Status.QUEUED
        items_redispatch(failed)
    return len(failed)


def campaign_set_priority(*, campaign: Campaign, priority: str) -> Campaign:
    """High-priority campaigns' jobs go to the front of the generation queue from now on."""
    if priority not in Priority.values:
        raise InputError("priority", f"must be one of {', '.join(Priority.values)}")
    Campaign.objects.filter(pk=campaign.pk).update(priority=priority)
    campaign.priority = priority
    return campaign


def campaign_control(*, campaign: Campaign, action: str) -> str:
    """One of ACTIONS by name (pages and the command line); returns a sentence saying what
    happened."""
    if action == "pause":
        campaign_pause(campaign=campaign)
        return f"{campaign} paused; queued items wait."
    if action == "resume":
        campaign_resume(campaign=campaign)
        return f"{campaign} resumed."
    if action == "cancel":
        count = campaign_cancel(campaign=campaign)
        return f"{campaign} cancelled; {count} queued item(s) cancelled."
    if action == "retry":
        count = campaign_retry_failed(campaign=campaign)
        return f"{count} failed item(s) of {campaign} queued again."
    raise InputError("action", f"must be one of {', '.join(ACTIONS)}")


@dataclass
class Reproduction:
    image: object  # PIL image
    identical: bool | None  # None: the item has no stored image to compare with
    max_difference: int | None
    batch_size: int  # the batch it was regenerated in
    batch_invariant: bool = False


def item_reproduce(*, item: Item) -> Reproduction:
    """Regenerate an item from its pinned versions, seed and parameters and compare pixels.

    An item made batch-invariant is regenerated alone, the way it was made. Any other local
    item is run in a batch padded with copies of its request to its recorded batch size,
    because its exact floats depend on it (generation.backends.diffusers). With the same
    hardware and library versions the diffusers backend then gives identical pixels.
    """
    import numpy as np
    from PIL import Image

    from generation.backends import BackendError, get_backend
    from generation.backends.requests import image_request, lora_specs, model_spec

    request = image_request(item)
    # Only local generation depends on the batch; a remote backend would bill every copy.
    options = {}
    batch_size = 1
    if item.base_model.backend == "diffusers":
        invariant = bool(item.run.get("batch_invariant"))
        options["batch_invariant"] = invariant
        if not invariant:
            batch_size = int(item.run.get("batch_size") or 1)
    try:
        results = get_backend(item.base_model.backend).generate(
            model_spec(item.base_model), lora_specs(item.loras), [request] * batch_size, **options
        )
    except BackendError as exc:
        raise InputError("item", f"cannot be regenerated: {exc}") from exc
    image = results[0].image
    if image is None:
        raise InputError("item", f"the backend made no image: {results[0].error}")
    if not item.image:
        return Reproduction(image, None, None, batch_size, results[0].batch_invariant)
    with default_storage.open(item.image.name, "rb") as fh:
        stored = Image.open(io.BytesIO(fh.read()), formats=["PNG"]).convert("RGB")
    new, old = np.asarray(image.convert("RGB")), np.asarray(stored)
    if new.shape != old.shape:
        return Reproduction(image, False, None, batch_size, results[0].batch_invariant)
    diff = int(np.abs(new.astype(np.int16) - old.astype(np.int16)).max())
    return Reproduction(image, diff == 0, diff, batch_size, results[0].batch_invariant)
