"""Turn a ScoreCard into a verdict: approved, review (a human looks) or rejected."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from review.vocabulary import Reason, Verdict, reason_label
from studio.errors import InputError

from .heuristics import ScoreCard

APPROVED = Verdict.APPROVED
REVIEW = Verdict.REVIEW
REJECTED = Verdict.REJECTED

# Why a verdict was reached (Decision.basis["rule"]).
HARD_FAIL = "hard_fail"  # blank, black or noise frame: rejected whatever the numbers
WEAK_SCORE = "weak_score"  # one weighted score below reject_below keeps it from approval
ABOVE = "above"  # overall >= approve_at
BELOW = "below"  # overall < reject_below
BETWEEN = "between"  # in between: a human decides
CONTENT = "content"  # a campaign content rule (nudity, a person) rejects or sends to review
UNSCREENED = "unscreened"  # the content screen could not look: never approved automatically


@dataclass
class Decision:
    overall: float
    verdict: str  # a Verdict
    reasons: list[Reason]  # what is wrong with the image (may be empty)
    # The rule that decided, with the numbers: {"rule", "overall", "approve_at",
    # "reject_below", "weak": [score names]}.
    basis: dict = field(default_factory=dict)


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
    or noise frame) is rejected whatever the numbers say, and so is an image a content rule
    rejects; a content rule that asks for review, or an image the content screen could not
    look at (``card.screen``), is never approved automatically. Raises InputError, naming the
    field,
    for thresholds outside 0 <= reject_below <= approve_at <= 1, a negative weight, or weights
    that give no positive weight to any score on the card (a misspelt policy must not pass).
    """
    check_thresholds(approve_at=approve_at, reject_below=reject_below)
    used = _check_weights(weights, card)

    total = math.fsum(weights[name] for name in used)
    overall = math.fsum(weights[name] * card.scores[name] for name in used) / total
    # Rounded so float noise cannot flip a verdict at a threshold (a mean of three 0.7 scores
    # is 0.6999999999999998 otherwise).
    overall = round(min(max(overall, 0.0), 1.0), 6)

    # A mean lets two good scores outvote one bad one (a blurred photo with fine exposure
    # scored 0.73); a single weighted score below reject_below keeps an image from auto-approval.
    weak = [name for name in used if weights[name] > 0 and card.scores[name] < reject_below]
    if card.hard_fail:
        verdict, rule = REJECTED, HARD_FAIL
    elif card.screen == "reject":
        verdict, rule = REJECTED, CONTENT
    elif weak and overall >= reject_below:
        verdict, rule = REVIEW, WEAK_SCORE
    elif overall >= approve_at:
        if card.screen == "review":
            verdict, rule = REVIEW, CONTENT
        elif card.screen == "unavailable":
            verdict, rule = REVIEW, UNSCREENED
        else:
            verdict, rule = APPROVED, ABOVE
    elif overall < reject_below:
        verdict, rule = REJECTED, BELOW
    else:
        verdict, rule = REVIEW, BETWEEN
    basis = {
        "rule": rule,
        "overall": overall,
        "approve_at": approve_at,
        "reject_below": reject_below,
        "weak": weak if rule == WEAK_SCORE else [],
    }
    if rule == CONTENT:
        basis["content"] = sorted({r.code for r in card.reasons if r.code in CONTENT_CODES})
        basis["action"] = card.screen
    return Decision(overall=overall, verdict=verdict, reasons=list(card.reasons), basis=basis)


def explain(basis: dict) -> str:
    """The decision's rule in plain words, for reviewers and managers."""
    rule = basis.get("rule")
    overall, approve, reject = (
        basis.get("overall", 0.0),
        basis.get("approve_at", 0.0),
        basis.get("reject_below", 0.0),
    )
    if rule == HARD_FAIL:
        return "Rejected: the image is blank, black or noise, whatever the scores say."
    if rule == WEAK_SCORE:
        names = ", ".join(name.replace("_", " ") for name in basis.get("weak", []))
        return (
            f"Sent to review: {names} scored below {reject:.2f}. One weak score keeps an image "
            f"from automatic approval, however high the overall score ({overall:.2f})."
        )
    if rule == CONTENT:
        found = " and ".join(
            _FOUND.get(code, reason_label(code).lower()) for code in basis.get("content", [])
        )
        if basis.get("action") == "reject":
            return f"Rejected: the content screen found {found}, which this campaign rejects."
        return (
            f"Sent to review: the content screen found {found}, which this campaign sends to "
            f"a person (overall score {overall:.2f})."
        )
    if rule == UNSCREENED:
        return (
            "Sent to review: content screening was unavailable, and an image nobody screened "
            f"is never approved automatically (overall score {overall:.2f})."
        )
    if rule == ABOVE:
        return f"Approved automatically: overall score {overall:.2f} is at least {approve:.2f}."
    if rule == BELOW:
        return f"Rejected automatically: overall score {overall:.2f} is below {reject:.2f}."
    if rule == BETWEEN:
        return (
            f"Sent to review: overall score {overall:.2f} is between {reject:.2f} (reject) "
            f"and {approve:.2f} (approve)."
        )
    return ""


CONTENT_CODES = ("nsfw", "person")
# What the content screen found, in explain()'s sentence.
_FOUND = {"nsfw": "nudity", "person": "a person"}


def check_thresholds(*, approve_at: float, reject_below: float) -> None:
    """The one check of a policy's thresholds: numbers in [0, 1], reject_below <= approve_at.
    Raises InputError naming the field."""
    _check_threshold("approve_at", approve_at)
    _check_threshold("reject_below", reject_below)
    if reject_below > approve_at:
        raise InputError(
            "reject_below",
            f"{reject_below} is above approve_at {approve_at}; images between the two go to "
            "review, so reject_below must not be greater",
        )


def _check_threshold(name: str, value: float) -> None:
    # bool is an int subclass; True as a threshold is a bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(name, f"must be a number, got {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(name, f"must be between 0 and 1, got {value!r}")


def _check_weights(weights: dict[str, float], card: ScoreCard) -> list[str]:
    """Validate the weights; return the weighted names the card has a score for."""
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InputError("weights", f"{name!r} must be a number, got {weight!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise InputError("weights", f"{name!r} must be a finite number >= 0, got {weight!r}")
    used = [name for name in weights if name in card.scores]
    if not any(weights[name] > 0 for name in used):
        raise InputError(
            "weights",
            f"must give a positive weight to at least one of the scores "
            f"{sorted(card.scores)}, got {weights!r}",
        )
    return used
