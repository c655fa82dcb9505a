"""Review labour into the cost ledger: the reviewer's time on an image × their hourly rate.

Called by review.services.queue.review_task_decide inside its transaction, before the
decision is written, while the claim's lease still says when it began. The time is from the
claim (or, if later, the reviewer's previous action: a grid of images claimed together is
one stretch of work, not one per image) to the decision, so a reviewer's hours are counted
once. Keyed by the claim's lease token: one entry per claim decided.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max

from generation.costs import seconds_charge
from generation.models import CostEntry
from generation.services import cost_record
from review.models import ReviewDecision, ReviewTask


def review_labour_record(*, task_id, user, token, now: datetime) -> CostEntry | None:
    """Record the labour of deciding a claimed task; None (nothing written) when the claim
    is not this reviewer's or has lapsed: the decision that follows is refused anyway, and
    its rollback takes this entry with it otherwise."""
    task = (
        ReviewTask.objects.select_for_update()
        .filter(
            pk=task_id,
            status=ReviewTask.Status.PENDING,
            claimed_by=user,
            lease_token=token,
            lease_until__gt=now,
        )
        .values("pk", "item_id", "lease_until", "lease_token")
        .first()
    )
    if task is None:
        return None
    lease = timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS)
    claimed_at = min(task["lease_until"] - lease, now)
    previous = ReviewDecision.objects.filter(reviewer=user, created_at__gt=claimed_at).aggregate(
        last=Max("created_at")
    )["last"]
    started = max(claimed_at, previous) if previous else claimed_at
    seconds = max(0.0, (now - started).total_seconds())
    charge = seconds_charge(
        kind=CostEntry.Kind.REVIEW,
        name="review",
        seconds=seconds,
        unit="reviewer_second",
        hourly=settings.STUDIO_REVIEWER_HOURLY_RATE,
        setting="STUDIO_REVIEWER_HOURLY_RATE",
        detail={
            "claimed_at": claimed_at.isoformat(),
            "started_at": started.isoformat(),
            "decided_at": now.isoformat(),
            "hourly_rate": str(settings.STUDIO_REVIEWER_HOURLY_RATE),
            "setting": "STUDIO_REVIEWER_HOURLY_RATE",
        },
    )
    return cost_record(
        key=f"review:{task['pk']}:{task['lease_token']}",
        kind=charge.kind,
        quantity=charge.quantity,
        unit=charge.unit,
        rate=charge.rate,
        amount=charge.amount,
        item_id=task["item_id"],
        user=user,
        occurred_at=now,
        detail=charge.detail,
    )
