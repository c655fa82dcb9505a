"""Automatic image quality scoring: measure an image (``score_image``) and route it
(``decide``) to approved, human review or rejected.

The generation/quality job calls exactly::

    card = score_image(load_image(path))
    decision = decide(card, **policy)   # policy = default_policy() or a campaign's policy
"""

from __future__ import annotations

from .heuristics import ScoreCard, load_image, score_image
from .policy import APPROVED, REJECTED, REVIEW, Decision, decide, default_policy

__all__ = [
    "APPROVED",
    "REJECTED",
    "REVIEW",
    "Decision",
    "ScoreCard",
    "decide",
    "default_policy",
    "load_image",
    "score_image",
]
