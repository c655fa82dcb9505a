"""The human review queue: lease claims (never a held lock), decisions, undo, send-back."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from generation.models import Item
from generation.services import item_regenerate, item_status_change
from review.costs import review_labour_record
from review.models import QualityPolicy, QualityResult, ReviewDecision, ReviewTask, Verdict
from review.vocabulary import ReasonCode
from studio import queues
from studio.errors import InputError


class ReviewError(InputError):
    """A decision that cannot be taken (claim expired, wrong state, missing reason)."""


# One statement: pick the oldest pending tasks nobody holds (or whose lease ran out), skipping
# rows another reviewer is claiming this instant, and stamp our lease on them. No lock is held
# while the human looks; the token proves the claim when the decision comes back.
_CLAIM_SQL = """
UPDATE review_reviewtask
   SET claimed_by_id = %(user)s, lease_token = gen_random_uuid(), lease_until = %(until)s
 WHERE id IN (
       SELECT id FROM review_reviewtask
        WHERE status = 'pending'
          AND (lease_until IS NULL OR lease_until < %(now)s)
          {filters}
        ORDER BY created_at, id
        FOR UPDATE SKIP LOCKED
        LIMIT %(limit)s)
RETURNING id
"""


def _claim(*, user, campaign_id, exclude_ids, limit: int) -> list:
    now = timezone.now()
    params = {
        "user": user.pk,
        "until": now + timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS),
        "now": now,
        "limit": limit,
    }
    filters = ""
    if campaign_id:
        filters += "AND campaign_id = %(campaign)s "
        params["campaign"] = campaign_id
    if exclude_ids:
        filters += "AND NOT (id = ANY(%(exclude)s::uuid[])) "
        params["exclude"] = [str(pk) for pk in exclude_ids]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(filters=filters), params)
        return [row[0] for row in cursor.fetchall()]


def _my_claims(*, user, campaign_id):
    mine = ReviewTask.objects.filter(
        claimed_by=user, status=ReviewTask.Status.PENDING, lease_until__gt=timezone.now()
    )
    if campaign_id:
        mine = mine.filter(campaign_id=campaign_id)
    return mine.order_by("created_at", "id")


def review_task_claim_next(*, user, campaign_id=None, exclude_ids=()) -> ReviewTask | None:
    """The reviewer's current claim if it still holds, else the next free task (or None).

    ``exclude_ids``: tasks this reviewer just skipped; they are not handed straight back
    (unless nothing else is left).
    """
    current = _my_claims(user=user, campaign_id=campaign_id).exclude(pk__in=exclude_ids).first()
    if current is not None:
        return current
    ids = _claim(user=user, campaign_id=campaign_id, exclude_ids=exclude_ids, limit=1)
    if not ids and exclude_ids:
        ids = _claim(user=user, campaign_id=campaign_id, exclude_ids=(), limit=1)
    return ReviewTask.objects.get(pk=ids[0]) if ids else None


def review_tasks_claim_grid(*, user, campaign_id=None, size: int | None = None) -> list[ReviewTask]:
    """Up to ``size`` tasks for the grid: the reviewer's live claims first, topped up."""
    size = size or settings.STUDIO_REVIEW_GRID_SIZE
    mine = list(_my_claims(user=user, campaign_id=campaign_id)[:size])
    if len(mine) < size:
        _claim(user=user, campaign_id=campaign_id, exclude_ids=(), limit=size - len(mine))
        mine = list(_my_claims(user=user, campaign_id=campaign_id)[:size])
    return mine


def review_task_release(*, task_id, user, token) -> bool:
    """Skip: give the claim back to the queue at once. False if it was no longer ours."""
    return bool(
        ReviewTask.objects.filter(
            pk=task_id, status=ReviewTask.Status.PENDING, claimed_by=user, lease_token=token
        ).update(claimed_by=None, lease_token=None, lease_until=None)
    )


def _automatic_lean(task: ReviewTask) -> str:
    """Which way the automatic score leaned: towards the nearer threshold of the policy."""
    quality = QualityResult.objects.filter(item_id=task.item_id).only("overall").first()
    policy = QualityPolicy.objects.filter(campaign_id=task.campaign_id).first()
    if quality is None or policy is None:
        return ""
    middle = (policy.approve_at + policy.reject_below) / 2
    return Verdict.APPROVED if quality.overall >= middle else Verdict.REJECTED


def review_task_decide(
    *, task_id, user, token, decision: str, reason_code: str = "", reason: str = ""
) -> ReviewTask:
    """Record a reviewer's decision, accepted only with the claim's token while it holds.

    A rejection needs a reason code (ReasonCode; "other" needs the reviewer's words too).
    The item's status follows (generation owns it); an approval is handed to delivery.
    """
    if decision not in (Verdict.APPROVED, Verdict.REJECTED):
        raise ReviewError("decision", "must be 'approved' or 'rejected'")
    reason = (reason or "").strip()
    reason_code = (reason_code or "").strip()
    if decision == Verdict.REJECTED:
        if not reason_code and reason:
            reason_code = ReasonCode.OTHER
        if not reason_code:
            raise ReviewError("reason", "say why the image is rejected")
        if reason_code not in ReasonCode.values:
            raise ReviewError(
                "reason", f"{reason_code!r} is not one of {', '.join(ReasonCode.values)}"
            )
        if reason_code == ReasonCode.OTHER and not reason:
            raise ReviewError("reason", "describe the problem when the reason is “other”")
    else:
        reason_code = ""
    now = timezone.now()
    with transaction.atomic():
        review_labour_record(task_id=task_id, user=user, token=token, now=now)  # the ledger
        updated = ReviewTask.objects.filter(
            pk=task_id,
            status=ReviewTask.Status.PENDING,
            claimed_by=user,
            lease_token=token,
            lease_until__gt=now,
        ).update(
            status=ReviewTask.Status.DECIDED,
            decision=decision,
            reason_code=reason_code,
            reason=reason,
            decided_by=user,
            decided_at=now,
            lease_until=None,
        )
        if not updated:
            raise ReviewError(
                "",
                "This image is no longer yours to decide: your claim expired or it was "
                "decided already. Take the next one.",
            )
        task = ReviewTask.objects.select_related("item").get(pk=task_id)
        ReviewDecision.objects.create(
            task=task,
            reviewer=user,
            decision=decision,
            reason_code=reason_code,
            reason=reason,
            automatic_verdict=_automatic_lean(task),
        )
        approved = decision == Verdict.APPROVED
        item_status_change(
            item_id=task.item_id,
            from_status=Item.Status.REVIEW,
            to_status=Item.Status.APPROVED if approved else Item.Status.REJECTED,
        )
        if approved:
            queues.enqueue("deliver", task.item_id)
    return task


def review_tasks_decide(
    *, user, claims: list[tuple], decision: str, reason_code: str = "", reason: str = ""
) -> tuple[list[ReviewTask], list[str]]:
    """Grid: one decision for many claimed tasks. Each is decided on its own (a stale claim
    does not undo the others); returns (decided tasks, error messages)."""
    if not claims:
        raise ReviewError("tasks", "select at least one image")
    decided, errors = [], []
    for task_id, token in claims:
        try:
            decided.append(
                review_task_decide(
                    task_id=task_id,
                    user=user,
                    token=token,
                    decision=decision,
                    reason_code=reason_code,
                    reason=reason,
                )
            )
        except ReviewError as exc:
            if exc.fields & {"decision", "reason"}:
                raise  # the same for every image: the request itself is wrong
            errors.append(f"{task_id}: {exc}")
    return decided, errors


def review_decision_undo(*, user, decision_id=None) -> ReviewTask:
    """Undo the reviewer's own latest decision (or the named one) within the undo window.

    Adds an ``undo`` entry to the audit trail (the decision row is never changed), puts the
    item back in review and the task back in the queue, claimed by this reviewer with a new
    lease. Undoing an approval hands the item to delivery, whose catalogue withdraws the
    asset if it was published (publishing needs the item approved).
    """
    now = timezone.now()
    window = timedelta(seconds=settings.STUDIO_REVIEW_UNDO_SECONDS)
    with transaction.atomic():
        candidates = ReviewDecision.objects.select_for_update(of=("self",)).filter(
            reviewer=user, action=ReviewDecision.Action.DECIDE, reversed_by__isnull=True
        )
        if decision_id is not None:
            candidates = candidates.filter(pk=decision_id)
        original = candidates.order_by("-created_at", "-pk").first()
        if original is None:
            raise ReviewError("undo", "you have no decision to undo")
        if original.created_at < now - window:
            raise ReviewError(
                "undo",
                f"decisions can be undone for {window.seconds // 60} minutes; this one is older",
            )
        task = ReviewTask.objects.select_for_update().get(pk=original.task_id)
        if task.status != ReviewTask.Status.DECIDED or task.decision != original.decision:
            raise ReviewError("undo", "this image was decided again since; nothing to undo")
        if Item.objects.filter(regenerated_from_id=task.item_id).exists():
            raise ReviewError("undo", "this image was already sent back for a new seed")
        item_status = (
            Item.Status.APPROVED if original.decision == Verdict.APPROVED else Item.Status.REJECTED
        )
        Item.objects.select_for_update().filter(pk=task.item_id).first()
        item_status_change(
            item_id=task.item_id, from_status=item_status, to_status=Item.Status.REVIEW
        )
        if original.decision == Verdict.APPROVED:
            queues.enqueue("deliver", task.item_id)
        ReviewDecision.objects.create(
            task=task,
            reviewer=user,
            action=ReviewDecision.Action.UNDO,
            decision=original.decision,
            reason_code=original.reason_code,
            reason=f"undo of {original.get_decision_display().lower()}",
            reverses=original,
        )
        ReviewTask.objects.filter(pk=task.pk).update(
            status=ReviewTask.Status.PENDING,
            decision="",
            reason_code="",
            reason="",
            decided_by=None,
            decided_at=None,
            claimed_by=user,
            lease_token=uuid.uuid4(),
            lease_until=now + timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS),
        )
        task.refresh_from_db()
    return task


def item_send_back(*, item_id, user) -> Item:
    """Regenerate a rejected image with a new seed (same recipe); audited on its review task."""
    with transaction.atomic():
        item = Item.objects.select_for_update().select_related("campaign").get(pk=item_id)
        if item.regenerations.exists():
            raise ReviewError("item", "this image was sent back already")
        try:
            new = item_regenerate(item=item)
        except InputError as exc:
            raise ReviewError(exc.errors) from None
        task = ReviewTask.objects.filter(item_id=item.pk).first()
        if task is not None:
            ReviewDecision.objects.create(
                task=task,
                reviewer=user,
                action=ReviewDecision.Action.SEND_BACK,
                decision=Verdict.REJECTED,
                reason_code=task.reason_code,
                reason=f"sent back for a new seed (new item {new.pk})",
            )
    return new


def review_tasks_reroute(*, campaign, user) -> dict[str, int]:
    """Re-decide the images of a campaign still waiting in review under its policy as it is
    now (after a recalibration), from their stored scores and detections, exactly as the
    scorer would. An image the policy now approves or rejects leaves the queue: its task is
    closed, its item moves, an approval goes to delivery, and a ReviewDecision (action
    "reroute", by the person who asked) records each move. Images a reviewer holds a claim on
    are left alone; so are those that still need a person.

    Returns counts: approved, rejected, still_in_review, claimed (left for their reviewer).
    """
    from review.quality import decide
    from review.selectors import stored_card

    policy = QualityPolicy.objects.get(campaign=campaign)
    rules = list(policy.content_rules or [])
    now = timezone.now()
    counts = {"approved": 0, "rejected": 0, "still_in_review": 0, "claimed": 0}
    note = (
        f"Re-routed after recalibration: approve at {policy.approve_at:g}, "
        f"reject below {policy.reject_below:g}."
    )
    with transaction.atomic():
        tasks = (
            ReviewTask.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(campaign=campaign, status=ReviewTask.Status.PENDING)
            .select_related("item__quality")
            .order_by("created_at")
        )
        for task in tasks:
            if task.claimed_by_id and task.lease_until and task.lease_until > now:
                counts["claimed"] += 1
                continue
            result = getattr(task.item, "quality", None)
            if result is None or task.item.status != Item.Status.REVIEW:
                continue
            verdict = decide(
                stored_card(result, rules),
                approve_at=policy.approve_at,
                reject_below=policy.reject_below,
                weights=policy.weights,
            ).verdict
            if verdict == Verdict.REVIEW:
                counts["still_in_review"] += 1
                continue
            rejected = verdict == Verdict.REJECTED
            code = ""
            if rejected:
                known = [c for c in result.reason_codes or [] if c in ReasonCode.values]
                code = known[0] if known else ReasonCode.OTHER
            ReviewTask.objects.filter(pk=task.pk).update(
                status=ReviewTask.Status.DECIDED,
                decision=verdict,
                reason_code=code,
                reason=note,
                claimed_by=None,
                lease_token=None,
                lease_until=None,
                decided_by=None,
                decided_at=now,
            )
            ReviewDecision.objects.create(
                task=task,
                reviewer=user,
                action=ReviewDecision.Action.REROUTE,
                decision=verdict,
                reason_code=code,
                reason=note,
                automatic_verdict=verdict,
            )
            QualityResult.objects.filter(pk=result.pk).update(verdict=verdict)
            item_status_change(
                item_id=task.item_id,
                from_status=Item.Status.REVIEW,
                to_status=Item.Status.REJECTED if rejected else Item.Status.APPROVED,
            )
            if not rejected:
                queues.enqueue("deliver", task.item_id)
            counts[verdict] += 1
    return counts
