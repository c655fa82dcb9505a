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
from review.models import (
    QualityPolicy,
    QualityResult,
    ReferenceImage,
    ReviewDecision,
    ReviewTask,
    Verdict,
)

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
    """One scoring job for an item id, or for a list of ids (scored as one CLIP batch)."""
    import django_rq
    from rq import Retry

    from review.jobs import score_item, score_items

    many = isinstance(item_id, list | tuple)
    django_rq.get_queue("quality").enqueue(
        score_items if many else score_item,
        [str(pk) for pk in item_id] if many else str(item_id),
        job_timeout=settings.JOB_TIMEOUT_QUALITY,
        retry=Retry(max=3, interval=[5, 30, 120]),
    )


def _near_duplicate(*, campaign_id, item_id, phash: str) -> tuple[str, int] | None:
    """The campaign's closest already-scored image within the near-duplicate distance.

    One SQL query over the stored hashes (Hamming distance with bit_count), never a rescan
    of image files.
    """
    limit = settings.STUDIO_NEAR_DUPLICATE_DISTANCE
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT item_id, d FROM (
                SELECT item_id,
                       bit_count(('x' || phash)::bit(64) # ('x' || %(phash)s)::bit(64)) AS d
                  FROM review_qualityresult
                 WHERE campaign_id = %(campaign)s AND phash <> '' AND item_id <> %(item)s
            ) AS distances
             WHERE d <= %(limit)s
             ORDER BY d, item_id
             LIMIT 1
            """,
            {"phash": phash, "campaign": campaign_id, "item": item_id, "limit": limit},
        )
        row = cursor.fetchone()
    return (str(row[0]), int(row[1])) if row else None


def item_score(*, item_id) -> QualityResult | None:
    """Score one generated image and route it (see ``items_score``)."""
    results = items_score(item_ids=[item_id])
    return results[0] if results else None


def items_score(*, item_ids) -> list[QualityResult]:
    """Score generated images and route each: approved → delivery, review → queue, rejected.

    Heuristics always; CLIP text match and unwanted concepts for the whole batch at once when
    a model is configured (else a recorded "skipped" note); style distance to the campaign's
    reference images; a near-duplicate check against the campaign's earlier results (the
    batch's own earlier images included). Idempotent: items already scored (or not in the
    scoring state) are left alone. An unreadable image does not stop the others; the error
    is raised after them, so the job is retried.
    """
    from review.quality import load_image
    from review.quality.clip import clip_score_images

    items = list(
        Item.objects.select_related("campaign__quality_policy")
        .filter(pk__in=list(item_ids), status=Item.Status.SCORING)
        .order_by("created_at", "pk")
    )
    loaded, errors = [], []
    for item in items:
        try:
            with item.image.open("rb") as handle:
                loaded.append((item, load_image(handle)))
        except (OSError, ValueError) as exc:
            logger.warning("item %s: cannot score its image: %s", item.pk, exc)
            errors.append(f"{item.pk}: {exc}")
    clips = clip_score_images(
        [image for _, image in loaded],
        prompts=[item.prompt for item, _ in loaded],
        unwanted=[list(item.campaign.quality_policy.unwanted_concepts or []) for item, _ in loaded],
    )
    results = []
    for (item, image), clip in zip(loaded, clips, strict=True):
        result = _item_route(item=item, image=image, clip=clip)
        if result is not None:
            results.append(result)
    if errors:
        raise ValueError("; ".join(errors))
    return results


def _item_route(*, item: Item, image, clip) -> QualityResult | None:
    from catalogue.services import enqueue_publish
    from generation.services import campaign_update_status
    from review.quality import add_clip, decide, score_image
    from review.quality.similarity import phash_hex, style_score

    card = score_image(image)
    policy = item.campaign.quality_policy
    notes = add_clip(card, clip)

    phash = phash_hex(image) if not card.hard_fail else ""
    if phash:
        references = item.campaign.reference_images.values_list("phash", flat=True)
        style, distance, style_reasons = style_score(
            phash,
            references,
            ok=settings.STUDIO_STYLE_DISTANCE_OK,
            bad=settings.STUDIO_STYLE_DISTANCE_BAD,
        )
        if style is not None:
            card.scores["style"] = style
            card.measures["style_distance"] = float(distance)
            card.reasons.extend(style_reasons)
        duplicate = _near_duplicate(campaign_id=item.campaign_id, item_id=item.pk, phash=phash)
        card.scores["uniqueness"] = 0.0 if duplicate else 1.0
        if duplicate:
            card.measures["duplicate_distance"] = float(duplicate[1])
            card.reasons.append(
                f"near-duplicate of item {duplicate[0]} in this campaign "
                f"(perceptual-hash distance {duplicate[1]})"
            )

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
            campaign_id=item.campaign_id,
            scores={**card.scores, **{f"measure_{k}": v for k, v in card.measures.items()}},
            overall=decision.overall,
            verdict=decision.verdict,
            reasons=decision.reasons + notes,
            phash=phash,
        )
        if new_status == Item.Status.REVIEW:
            ReviewTask.objects.create(item=item, campaign_id=item.campaign_id)
        elif new_status == Item.Status.APPROVED:
            transaction.on_commit(lambda: enqueue_publish(item.pk))
        campaign_update_status(campaign_id=item.campaign_id)
    return result


def quality_policy_update(
    *,
    policy: QualityPolicy,
    approve_at: float,
    reject_below: float,
    unwanted_concepts: list[str] | None = None,
) -> QualityPolicy:
    """New thresholds (and optionally unwanted concepts) for a campaign; applies to images
    scored from now on."""
    approve_at, reject_below = float(approve_at), float(reject_below)
    _check_thresholds(approve_at, reject_below)
    policy.approve_at, policy.reject_below = approve_at, reject_below
    fields = ["approve_at", "reject_below", "updated_at"]
    if unwanted_concepts is not None:
        concepts = [c.strip() for c in unwanted_concepts if c.strip()]
        if any(len(c) > 100 for c in concepts):
            raise InputError("unwanted_concepts: each concept must be at most 100 characters")
        policy.unwanted_concepts = list(dict.fromkeys(concepts))
        fields.append("unwanted_concepts")
    policy.save(update_fields=fields)
    return policy


MAX_REFERENCE_BYTES = 20 * 2**20


def reference_image_add(*, campaign: Campaign, upload, user) -> ReferenceImage:
    """Store a style reference for a campaign (PNG, JPEG or WEBP), with its perceptual hash."""
    import io

    from django.core.files.base import ContentFile

    from review.quality import load_image
    from review.quality.similarity import phash_hex

    data = upload.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise InputError(f"image: larger than {MAX_REFERENCE_BYTES // 2**20} MB")
    try:
        image = load_image(io.BytesIO(data))
    except ValueError as exc:
        raise InputError(f"image: {str(exc).split(': ', 1)[-1]}") from None
    buffer = io.BytesIO()
    # Re-encoded: never store the uploaded bytes as they came.
    image.save(buffer, format="PNG")
    reference = ReferenceImage(campaign=campaign, phash=phash_hex(image), uploaded_by=user)
    reference.image.save(f"{campaign.pk}.png", ContentFile(buffer.getvalue()), save=False)
    reference.save()
    return reference


# --- The review queue -----------------------------------------------------------------------

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


def review_task_decide(*, task_id, user, token, decision: str, reason: str = "") -> ReviewTask:
    """Record a reviewer's decision, accepted only with the claim's token while it holds."""
    from catalogue.services import asset_restore, enqueue_publish
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
        ReviewDecision.objects.create(
            task=task,
            reviewer=user,
            decision=decision,
            reason=reason,
            automatic_verdict=_automatic_lean(task),
        )
        new_status = Item.Status.APPROVED if decision == Verdict.APPROVED else Item.Status.REJECTED
        Item.objects.filter(pk=task.item_id, status=Item.Status.REVIEW).update(
            status=new_status, finished_at=now
        )
        if new_status == Item.Status.APPROVED:
            # Approved again after an undo had withdrawn its asset: publish it again.
            asset_restore(item_id=task.item_id)
            transaction.on_commit(lambda: enqueue_publish(task.item_id))
        campaign_update_status(campaign_id=task.campaign_id)
    return task


def review_tasks_decide(
    *, user, claims: list[tuple], decision: str, reason: str = ""
) -> tuple[list[ReviewTask], list[str]]:
    """Grid: one decision for many claimed tasks. Each is decided on its own (a stale claim
    does not undo the others); returns (decided tasks, error messages)."""
    if not claims:
        raise ReviewError("tasks: select at least one image")
    decided, errors = [], []
    for task_id, token in claims:
        try:
            decided.append(
                review_task_decide(
                    task_id=task_id, user=user, token=token, decision=decision, reason=reason
                )
            )
        except ReviewError as exc:
            if str(exc).startswith(("decision:", "reason:")):
                raise
            errors.append(f"{task_id}: {exc}")
    return decided, errors


def review_decision_undo(*, user, decision_id=None) -> ReviewTask:
    """Undo the reviewer's own latest decision (or the named one) within the undo window.

    Adds an ``undo`` entry to the audit trail (the decision row is never changed), puts the
    item back in review and the task back in the queue, claimed by this reviewer with a new
    lease. Undoing an approval withdraws the asset if it was published already; one that
    is not published yet never will be (publishing needs the item approved).
    """
    from catalogue.services import asset_withdraw

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
            raise ReviewError("undo: you have no decision to undo")
        if original.created_at < now - window:
            raise ReviewError(
                f"undo: decisions can be undone for {window.seconds // 60} minutes; "
                "this one is older"
            )
        task = ReviewTask.objects.select_for_update().get(pk=original.task_id)
        if task.status != ReviewTask.Status.DECIDED or task.decision != original.decision:
            raise ReviewError("undo: this image was decided again since; nothing to undo")
        if Item.objects.filter(regenerated_from_id=task.item_id).exists():
            raise ReviewError("undo: this image was already sent back for a new seed")
        item_status = (
            Item.Status.APPROVED if original.decision == Verdict.APPROVED else Item.Status.REJECTED
        )
        Item.objects.select_for_update().filter(pk=task.item_id).first()
        Item.objects.filter(pk=task.item_id, status=item_status).update(
            status=Item.Status.REVIEW, finished_at=None
        )
        if original.decision == Verdict.APPROVED:
            asset_withdraw(item_id=task.item_id)
        ReviewDecision.objects.create(
            task=task,
            reviewer=user,
            action=ReviewDecision.Action.UNDO,
            decision=original.decision,
            reason=f"undo of {original.get_decision_display().lower()}",
            reverses=original,
        )
        ReviewTask.objects.filter(pk=task.pk).update(
            status=ReviewTask.Status.PENDING,
            decision="",
            reason="",
            decided_by=None,
            decided_at=None,
            claimed_by=user,
            lease_token=uuid.uuid4(),
            lease_until=now + timedelta(seconds=settings.STUDIO_REVIEW_LEASE_SECONDS),
        )
        Campaign.objects.filter(pk=task.campaign_id, status=Campaign.Status.COMPLETED).update(
            status=Campaign.Status.RUNNING, finished_at=None
        )
        task.refresh_from_db()
    return task


def item_send_back(*, item_id, user) -> Item:
    """Regenerate a rejected image with a new seed (same recipe); audited on its review task."""
    from generation.services import item_regenerate

    with transaction.atomic():
        item = Item.objects.select_for_update().select_related("campaign").get(pk=item_id)
        if item.regenerations.exists():
            raise ReviewError("item: this image was sent back already")
        try:
            new = item_regenerate(item=item)
        except InputError as exc:
            raise ReviewError(str(exc)) from None
        task = ReviewTask.objects.filter(item_id=item.pk).first()
        if task is not None:
            ReviewDecision.objects.create(
                task=task,
                reviewer=user,
                action=ReviewDecision.Action.SEND_BACK,
                decision=Verdict.REJECTED,
                reason=f"sent back for a new seed (new item {new.pk})",
            )
    return new
