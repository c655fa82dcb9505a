"""Automatic image quality scoring: measure an image (``score_image``) and route it
(``decide``) to approved, human review or rejected.

The generation/quality job calls exactly::

    card = score_image(load_image(path))
    add_content(card, screen, rules)      # content.screen_images(...) and the policy's rules
    add_clip(card, clip_result)           # optional: clip.clip_score_images(...) per batch
    decision = decide(card, **policy)   # policy = default_policy() or a campaign's policy

Content screening (``review.quality.content``, NudeNet's bundled detector) and CLIP
(``review.quality.clip``) import onnxruntime and torch lazily; style and near-duplicate
checks use perceptual hashes (``review.quality.similarity``).
"""

from __future__ import annotations

from .heuristics import ScoreCard, load_image, score_image
from .policy import (
    APPROVED,
    REJECTED,
    REVIEW,
    Decision,
    check_thresholds,
    decide,
    default_policy,
    explain,
)


def add_content(card: ScoreCard, screen, rules: list[dict]) -> None:
    """Merge a content ``ScreenResult`` into a card, judged by the campaign's rules: the
    detections, a ``content`` score (1 - the best score among the classes the rules name),
    a reason per rule that fired, and ``card.screen`` for ``decide``. A screen that did not
    run leaves the card "unavailable" with the reason: it cannot be approved automatically.
    A hard failure (blank, black, noise) needs no screening."""
    from review.vocabulary import Reason, ReasonCode

    from .content import judge

    if card.hard_fail:
        return
    if screen.skipped:
        card.screen = "unavailable"
        card.reasons.append(
            Reason(
                ReasonCode.OTHER,
                "Content screening unavailable: a person must look before it is approved.",
                screen.skipped,
            )
        )
        return
    check = judge(screen.detections, rules)
    card.detections = [
        dict(detection, rule=rule) if rule else dict(detection)
        for detection, rule in zip(screen.detections, check.rules, strict=True)
    ]
    card.scores["content"] = check.score
    card.reasons.extend(check.reasons)
    card.screen = check.action or "clear"


def add_clip(card: ScoreCard, clip) -> list[str]:
    """Merge a ``ClipResult`` into a card; returns the notes (why CLIP was skipped) to record,
    which are not problems with the image."""
    card.scores.update(clip.scores)
    card.measures.update(clip.measures)
    card.reasons.extend(clip.reasons)
    return [clip.skipped] if clip.skipped else []


__all__ = [
    "add_clip",
    "add_content",
    "APPROVED",
    "REJECTED",
    "REVIEW",
    "Decision",
    "check_thresholds",
    "explain",
    "ScoreCard",
    "decide",
    "default_policy",
    "load_image",
    "score_image",
]
