"""Automatic image quality scoring: measure an image (``score_image``) and route it
(``decide``) to approved, human review or rejected.

The generation/quality job calls exactly::

    card = score_image(load_image(path))
    add_clip(card, clip_result)           # optional: clip.clip_score_images(...) per batch
    decision = decide(card, **policy)   # policy = default_policy() or a campaign's policy

CLIP (``review.quality.clip``) imports torch lazily; style and near-duplicate checks use
perceptual hashes (``review.quality.similarity``).
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


def add_clip(card: ScoreCard, clip) -> list[str]:
    """Merge a ``ClipResult`` into a card; returns the notes (why CLIP was skipped) to record,
    which are not problems with the image."""
    card.scores.update(clip.scores)
    card.measures.update(clip.measures)
    card.reasons.extend(clip.reasons)
    return [clip.skipped] if clip.skipped else []


__all__ = [
    "add_clip",
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
