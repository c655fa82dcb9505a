"""Writes for quality results, policies and the human review queue."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from generation.models import Campaign, Item
from generation.prompts import InputError
from review.models import QualityPolicy, QualityResult, ReviewDecision, ReviewTask, Verdict

logger = logging.getLogger(__name__)


class ReviewError(Exception):
    """A decision that cannot be taken (claim expired, wrong state, missing reason)."""


def _check_thresholds(approve_at: float, reject_below: float) -> None:
    for field, value in (("approve_at", approve_at), ("reject_below", reject_below)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{field}: must be between 0 and 1, got {value}")
    if reject_below > approve_at:
        raise InputError(
            f"reject_below: {reject_below} is above approve_at {approve_at}; "
            "images between the two go to review"
        )


def quality_policy_create(
    *, campaign: Campaign, approve_at: float | None = None, reject_below: float | None = None
) -> QualityPolicy:
    approve_at = settings.STUDIO_QUALITY_APPROVE_AT if approve_at is None else float(approve_at)
    reject_below = (
        settings.STUDIO_QUALITY_REJECT_BELOW if reject_below is None else float(reject_below)
    )
    _check_thresholds(approve_at, reject_below)
    return QualityPolicy.objects.create(
        campaign=campaign, approve_at=approve_at, reject_below=reject_below
    )


def enqueue_scoring(item_id) -> None:
    import django_rq
    from rq import Retry

    from review.jobs import score_item

    django_rq.get_queue("quality").enqueue(
        score_item,
        str(item_id),
        job_timeout=settings.JOB_TIMEOUT_QUALITY,
        retry=Retry(max=3, interval=[5, 30, 120]),
    )


def item_score(*, item_id) -> QualityResult | None:
    """Score a generated image and route it: approved → delivery, review → queue, rejected.

    Idempotent: an item already scored (or not in the scoring state) is left alone.
    """
    from catalogue.services import enqueue_publish
    from generation.services import campaign_update_status
    from review.quality import decide, load_image, score_image

    item = Item.objects.select_related("campaign__quality_policy").get(pk=item_id)
    if item.status != Item.Status.SCORING:
        return None
    with item.image.open("rb") as handle:
        card = score_image(load_image(handle))
    policy = item.campaign.quality_policy
    decision = decide(
        card,
        approve_at=policy.approve_at,
        reject_below=policy.reject_below,
        weights=policy.weights,
    )
    new_status = {
        Verdict.APPROVED: Item.Status.APPROVED,
        Verdict.REVIEW: Item.Status.REVIEW,
        Verdict.REJECTED: Item.Status.REJECTED,
    }[decision.verdict]
    with transaction.atomic():
        updated = Item.objects.filter(pk=item.pk, status=Item.Status.SCORING).update(
            status=new_status,
            finished_at=timezone.now() if new_status != Item.Status.REVIEW else None,
        )
        if not updated:
            return None
        result = QualityResult.objects.create(
            item=item,
            scores={**card.scores, **{f"measure_{k}": v for k, v in card.measures.items()}},
            overall=decision.overall,
            verdict=decision.verdict,
            reasons=decision.reasons,
        )
        if new_status == Item.Status.REVIEW:
            ReviewTask.objects.create(item=item, campaign_id=item.campaign_id)
        elif new_status == Item.Status.APPROVED:
            transaction.on_commit(lambda: enqueue_publish(item.pk))
        campaign_update_status(campaign_id=item.campaign_id)
    return result


# --- The review queue -----------------------------------------------------------------------

# One statement: pick the oldest pending task nobody holds (or whose lease ran out), skipping
# rows another reviewer is claiming this instant, and stamp our lease on it. No lock is held
# while the human looks; the token proves the claim when the decision comes back.
_CLAIM_SQL = """
UPDATE review_reviewtask
   SET claimed_by_id = %(user)s, lease_token = %(token)s, lease_until = %(until)s
 WHERE id = (
       SELECT id FROM review_reviewtask
        WHERE status = 'pending'
          AND (lease_until IS NULL OR lease_until < %(now)s)
          {campaign_filter}
        ORDER BY created_at, id
        FOR UPDATE SKIP LOCKED
        LIMIT 1)
RETURNING id
"""


def review_task_claim_next(*, user, campaign_id=None) -> ReviewTask | None:
    """The reviewer's current claim if it still holds, else the next free task (or None)."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS)
    mine = ReviewTask.objects.filter(
        claimed_by=user, status=ReviewTask.Status.PENDING, lease_until__gt=now
    )
    if campaign_id:
        mine = mine.filter(campaign_id=campaign_id)
    current = mine.order_by("created_at").first()
    if current is not None:
        return current
    params = {"user": user.pk, "token": uuid.uuid4(), "until": until, "now": now}
    campaign_filter = ""
    if campaign_id:
        campaign_filter = "AND campaign_id = %(campaign)s"
        params["campaign"] = campaign_id
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(campaign_filter=campaign_filter), params)
        row = cursor.fetchone()
    return ReviewTask.objects.get(pk=row[0]) if row else None


def review_task_decide(*, task_id, user, token, decision: str, reason: str = "") -> ReviewTask:
    """Record a reviewer's decision, accepted only with the claim's token while it holds."""
    from catalogue.services import enqueue_publish
    from generation.services import campaign_update_status

    if decision not in (Verdict.APPROVED, Verdict.REJECTED):
        raise ReviewError("decision: must be 'approved' or 'rejected'")
    reason = (reason or "").strip()
    if decision == Verdict.REJECTED and not reason:
        raise ReviewError("reason: say why the image is rejected")
    now = timezone.now()
    with transaction.atomic():
        updated = ReviewTask.objects.filter(
            pk=task_id,
            status=ReviewTask.Status.PENDING,
            claimed_by=user,
            lease_token=token,
            lease_until__gt=now,
        ).update(
            status=ReviewTask.Status.DECIDED,
            decision=decision,
            reason=reason,
            decided_by=user,
            decided_at=now,
            lease_until=None,
        )
        if not updated:
            raise ReviewError(
                "This image is no longer yours to decide: your claim expired or it was "
                "decided already. Take the next one."
            )
        task = ReviewTask.objects.select_related("item").get(pk=task_id)
        ReviewDecision.objects.create(task=task, reviewer=user, decision=decision, reason=reason)
        new_status = Item.Status.APPROVED if decision == Verdict.APPROVED else Item.Status.REJECTED
        Item.objects.filter(pk=task.item_id, status=Item.Status.REVIEW).update(
            status=new_status, finished_at=now
        )
        if new_status == Item.Status.APPROVED:
            transaction.on_commit(lambda: enqueue_publish(task.item_id))
        campaign_update_status(campaign_id=task.campaign_id)
    return task
