"""Turn a ScoreCard into a verdict: approved, review (a human looks) or rejected."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .heuristics import ScoreCard

APPROVED = "approved"
REVIEW = "review"
REJECTED = "rejected"


@dataclass
class Decision:
    overall: float
    verdict: str  # APPROVED | REVIEW | REJECTED
    reasons: list[str]


def default_policy() -> dict[str, Any]:
    """The site-wide policy from settings, in the keyword form ``decide()`` takes."""
    return {
        "approve_at": settings.STUDIO_QUALITY_APPROVE_AT,
        "reject_below": settings.STUDIO_QUALITY_REJECT_BELOW,
        "weights": dict(settings.STUDIO_QUALITY_WEIGHTS),
    }


def decide(
    card: ScoreCard, *, approve_at: float, reject_below: float, weights: dict[str, float]
) -> Decision:
    """Weighted mean of the card's scores against the two thresholds.

    Only scores named in ``weights`` count; a weighted score the card lacks is skipped, so a
    policy may weight a scorer that a given worker does not run. A hard failure (blank, black
    or noise frame) is rejected whatever the numbers say. Raises ValueError, naming the field,
    for thresholds outside 0 <= reject_below <= approve_at <= 1, a negative weight, or weights
    that give no positive weight to any score on the card (a misspelt policy must not pass).
    """
    _check_threshold("approve_at", approve_at)
    _check_threshold("reject_below", reject_below)
    if reject_below > approve_at:
        raise ValueError(
            f"reject_below ({reject_below}) must not be greater than approve_at ({approve_at})"
        )
    used = _check_weights(weights, card)

    total = math.fsum(weights[name] for name in used)
    overall = math.fsum(weights[name] * card.scores[name] for name in used) / total
    # Rounded so float noise cannot flip a verdict at a threshold (a mean of three 0.7 scores
    # is 0.6999999999999998 otherwise).
    overall = round(min(max(overall, 0.0), 1.0), 6)

    reasons = list(card.reasons)
    # A mean lets two good scores outvote one bad one (a blurred photo with fine exposure
    # scored 0.73); a single weighted score below reject_below keeps an image from auto-approval.
    weak = [name for name in used if weights[name] > 0 and card.scores[name] < reject_below]
    if card.hard_fail:
        verdict = REJECTED
        reasons.append(f"rejected: hard failure (overall {overall:.2f})")
    elif weak and overall >= reject_below:
        verdict = REVIEW
        reasons.append(
            f"review: {', '.join(weak)} below reject_below {reject_below:.2f} "
            f"(overall {overall:.2f})"
        )
    elif overall >= approve_at:
        verdict = APPROVED
        reasons.append(f"approved: overall {overall:.2f} >= approve_at {approve_at:.2f}")
    elif overall < reject_below:
        verdict = REJECTED
        reasons.append(f"rejected: overall {overall:.2f} < reject_below {reject_below:.2f}")
    else:
        verdict = REVIEW
        reasons.append(
            f"review: overall {overall:.2f} is between reject_below {reject_below:.2f} "
            f"and approve_at {approve_at:.2f}"
        )
    return Decision(overall=overall, verdict=verdict, reasons=reasons)


def _check_threshold(name: str, value: float) -> None:
    # bool is an int subclass; True as a threshold is a bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def _check_weights(weights: dict[str, float], card: ScoreCard) -> list[str]:
    """Validate the weights; return the weighted names the card has a score for."""
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"weights[{name!r}] must be a number, got {weight!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weights[{name!r}] must be a finite number >= 0, got {weight!r}")
    used = [name for name in weights if name in card.scores]
    if not any(weights[name] > 0 for name in used):
        raise ValueError(
            f"weights must give a positive weight to at least one of the scores "
            f"{sorted(card.scores)}, got {weights!r}"
        )
    return used
