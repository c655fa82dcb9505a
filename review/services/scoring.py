"""Scoring generated images and routing each to approved, review or rejected."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction

from generation.models import Item
from generation.services import item_status_change
from review.models import QualityResult, ReviewTask, Verdict
from review.services.policies import quality_policy_ensure
from review.vocabulary import Reason, ReasonCode
from studio import queues

logger = logging.getLogger(__name__)

_ITEM_STATUS = {
    Verdict.APPROVED: Item.Status.APPROVED,
    Verdict.REVIEW: Item.Status.REVIEW,
    Verdict.REJECTED: Item.Status.REJECTED,
}


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

    Heuristics always; content screening always (NudeNet's bundled detector, judged by the
    campaign's content rules; when it cannot run, no image is approved automatically); CLIP
    text match and unwanted concepts for the whole batch at once when a model is configured
    (else a recorded "skipped" note); style distance to the campaign's
    reference images; a near-duplicate check against the campaign's earlier results (the
    batch's own earlier images included). Idempotent: items already scored (or not in the
    scoring state) are left alone. An unreadable image does not stop the others; the error
    is raised after them, so the job is retried.
    """
    from review.quality import load_image
    from review.quality.clip import clip_score_images
    from review.quality.content import screen_images

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
    policies = [quality_policy_ensure(campaign=item.campaign) for item, _ in loaded]
    clips = clip_score_images(
        [image for _, image in loaded],
        prompts=[item.prompt for item, _ in loaded],
        unwanted=[list(policy.unwanted_concepts or []) for policy in policies],
        vocabulary=[
            [*settings.STUDIO_CLIP_TAGS, *(policy.tag_vocabulary or [])] for policy in policies
        ],
    )
    screens = screen_images([image for _, image in loaded])
    results = []
    for (item, image), clip, screen in zip(loaded, clips, screens, strict=True):
        result = _item_route(item=item, image=image, clip=clip, screen=screen)
        if result is not None:
            results.append(result)
    if errors:
        raise ValueError("; ".join(errors))
    return results


def _item_route(*, item: Item, image, clip, screen) -> QualityResult | None:
    from review.quality import add_clip, add_content, decide, score_image
    from review.quality.palette import dominant_colours
    from review.quality.similarity import phash_hex, style_score

    card = score_image(image)
    policy = quality_policy_ensure(campaign=item.campaign)
    add_content(card, screen, policy.content_rules or [])
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
                Reason(
                    ReasonCode.DUPLICATE,
                    "It is a near-copy of another image in this campaign.",
                    f"perceptual-hash distance {duplicate[1]} to item {duplicate[0]}",
                )
            )

    decision = decide(
        card,
        approve_at=policy.approve_at,
        reject_below=policy.reject_below,
        weights=policy.weights,
    )
    with transaction.atomic():
        moved = item_status_change(
            item_id=item.pk,
            from_status=Item.Status.SCORING,
            to_status=_ITEM_STATUS[decision.verdict],
        )
        if not moved:
            return None
        result = QualityResult.objects.create(
            item=item,
            campaign_id=item.campaign_id,
            scores=card.scores,
            measures=card.measures,
            overall=decision.overall,
            verdict=decision.verdict,
            reasons=[reason.as_dict() for reason in decision.reasons],
            reason_codes=sorted({reason.code for reason in decision.reasons}),
            notes=notes,
            hard_fail=card.hard_fail,
            basis=decision.basis,
            palette=[] if card.hard_fail else dominant_colours(image),
            clip_tags=[{"tag": tag, "score": score} for tag, score in clip.tags],
            detections=card.detections,
            screen=card.screen,
            subject_box=card.subject_box or [],
            phash=phash,
        )
        if decision.verdict == Verdict.REVIEW:
            ReviewTask.objects.create(item=item, campaign_id=item.campaign_id)
        elif decision.verdict == Verdict.APPROVED:
            queues.enqueue("deliver", item.pk)
    return result
