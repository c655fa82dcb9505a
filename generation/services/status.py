"""Campaign and item status: the only code that changes either.

A campaign's status moves only along ``Campaign.TRANSITIONS``; an item's verdict status moves
only along ``Item.VERDICT_TRANSITIONS`` when another stage asks (scoring, review, undo). Both
are conditional updates, so a second run of the same request changes nothing.
"""

from __future__ import annotations

from django.utils import timezone

from generation.models import Campaign, Item, PauseReason
from studio import queues, webhooks
from studio.errors import InputError

ANNOUNCE_BATCH = 500


def items_announce(*, item_ids) -> None:
    """Tell the catalogue (stage "index") that these items changed, after the commit; it
    keeps an entry for every image whatever its status. The reconciler catches any miss."""
    ids = [str(pk) for pk in item_ids]
    batches = [ids[start : start + ANNOUNCE_BATCH] for start in range(0, len(ids), ANNOUNCE_BATCH)]
    queues.enqueue_jobs("index", [queues.Job(batch) for batch in batches])


def campaign_transition(
    *,
    campaign: Campaign | None = None,
    campaign_id=None,
    action: str,
    strict: bool = True,
    reason: str = "",
    note: str = "",
) -> bool:
    """Apply one of ``Campaign.TRANSITIONS`` by a conditional update.

    ``strict``: refuse (InputError) when the campaign is not in a status the action starts
    from; otherwise return False and change nothing (the automatic complete and reopen).
    A pause records why (``reason``: a PauseReason, default manual; ``note`` in words); any
    other change clears it.
    """
    if action not in Campaign.TRANSITIONS:
        raise InputError("action", f"must be one of {', '.join(Campaign.TRANSITIONS)}")
    starts, to = Campaign.TRANSITIONS[action]
    pk = campaign.pk if campaign is not None else campaign_id
    finished = (
        timezone.now() if to in (Campaign.Status.CANCELLED, Campaign.Status.COMPLETED) else None
    )
    if to == Campaign.Status.PAUSED:
        why = {"pause_reason": reason or PauseReason.MANUAL, "pause_note": note[:300]}
    else:
        why = {"pause_reason": "", "pause_note": ""}
    changed = Campaign.objects.filter(pk=pk, status__in=starts).update(
        status=to, finished_at=finished, **why
    )
    if not changed and strict:
        current = Campaign.objects.values_list("status", flat=True).get(pk=pk)
        raise InputError("campaign", f"cannot {action} a campaign that is {current}")
    if changed and to in (Campaign.Status.COMPLETED, Campaign.Status.PAUSED):
        webhooks.event_emit(f"campaign.{to}", {"campaign": {"id": str(pk), "status": to, **why}})
    if changed and campaign is not None:
        campaign.refresh_from_db(fields=["status", "finished_at", "pause_reason", "pause_note"])
    return bool(changed)


def campaign_complete_if_done(*, campaign_id) -> bool:
    """Mark a running campaign completed once every item reached a final status."""
    open_items = Item.objects.filter(campaign_id=campaign_id).exclude(
        status__in=Item.FINAL_STATUSES
    )
    if open_items.exists():
        return False
    return campaign_transition(campaign_id=campaign_id, action="complete", strict=False)


def campaign_reopen(*, campaign_id) -> bool:
    """A completed campaign has new work again: it runs (no-op for any other status)."""
    return campaign_transition(campaign_id=campaign_id, action="reopen", strict=False)


def item_status_change(*, item_id, from_status: str, to_status: str) -> bool:
    """Move an item between verdict statuses for another stage (scoring, review, undo).

    Conditional on ``from_status``: False when the item was not there (decided already, or
    moved by someone else), and nothing changes. Keeps the campaign's status in step.
    """
    if to_status not in Item.VERDICT_TRANSITIONS.get(from_status, ()):
        raise InputError("status", f"an item cannot go from {from_status} to {to_status}")
    final = to_status in Item.FINAL_STATUSES
    item = Item.objects.filter(pk=item_id).values("campaign_id").first()
    if item is None:
        return False
    changed = Item.objects.filter(pk=item_id, status=from_status).update(
        status=to_status, finished_at=timezone.now() if final else None
    )
    if changed and to_status in (Item.Status.APPROVED, Item.Status.REJECTED):
        webhooks.event_emit(
            f"item.{to_status}",
            {"item": {"id": str(item_id), "campaign": str(item["campaign_id"])}},
        )
    if changed:
        items_announce(item_ids=[item_id])
        if final:
            campaign_complete_if_done(campaign_id=item["campaign_id"])
        else:
            campaign_reopen(campaign_id=item["campaign_id"])
    return bool(changed)
