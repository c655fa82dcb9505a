"""The words every stage shares about an image's quality: verdicts and reason codes.

Automatic scorers and reviewers give reasons from the same list, so "rejected because of blur"
is one query whoever decided. Codes are stable (stored, searched, exported); labels are for
people. Pure: no models, importable from anywhere in review and the apps after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import models


class Verdict(models.TextChoices):
    APPROVED = "approved", "Approved"
    REVIEW = "review", "Needs review"
    REJECTED = "rejected", "Rejected"


class ReasonCode(models.TextChoices):
    BLUR = "blur", "Blurry"
    EXPOSURE = "exposure", "Badly exposed"
    CONTRAST = "contrast", "Low contrast"
    ARTEFACTS = "artefacts", "Artefacts"
    NOISE = "noise", "Noise"
    BLANK = "blank", "Blank or black frame"
    OFF_PROMPT = "off-prompt", "Does not match the prompt"
    UNWANTED_CONCEPT = "unwanted-concept", "Shows something unwanted"
    OFF_STYLE = "off-style", "Off-style"
    DUPLICATE = "duplicate", "Near-duplicate"
    CROPPED = "cropped", "Subject cut off by the frame"
    # Content screening (review.quality.content): what is in the picture, per campaign rules.
    NSFW = "nsfw", "Nudity (exposed intimate body parts)"
    PERSON = "person", "Shows a person"
    OTHER = "other", "Other"


@dataclass(frozen=True)
class Reason:
    """One problem found with an image: a stable code, a sentence for people, and the
    measurement behind it (empty for a reviewer's own words)."""

    code: str
    text: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def reason_label(code: str) -> str:
    try:
        return ReasonCode(code).label
    except ValueError:
        return code
