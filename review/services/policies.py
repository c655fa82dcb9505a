"""Quality policies (a campaign's thresholds, weights, unwanted concepts and content rules)
and style references."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files.base import ContentFile

from generation.models import Campaign
from review.models import QualityPolicy, ReferenceImage
from review.quality import check_thresholds
from review.quality.content import check_content_rules, default_content_rules
from studio.errors import InputError

MAX_REFERENCE_BYTES = 20 * 2**20


def quality_thresholds_check(
    *, approve_at: float | None, reject_below: float | None
) -> tuple[float, float]:
    """The thresholds a policy would get (None: the site default), or InputError."""
    approve_at = settings.STUDIO_QUALITY_APPROVE_AT if approve_at is None else float(approve_at)
    reject_below = (
        settings.STUDIO_QUALITY_REJECT_BELOW if reject_below is None else float(reject_below)
    )
    check_thresholds(approve_at=approve_at, reject_below=reject_below)
    return approve_at, reject_below


def quality_policy_create(
    *, campaign: Campaign, approve_at: float | None = None, reject_below: float | None = None
) -> QualityPolicy:
    approve_at, reject_below = quality_thresholds_check(
        approve_at=approve_at, reject_below=reject_below
    )
    return QualityPolicy.objects.create(
        campaign=campaign,
        approve_at=approve_at,
        reject_below=reject_below,
        content_rules=_template_rules(campaign),
    )


def _template_rules(campaign: Campaign) -> list[dict]:
    """The content rules a campaign starts with, by its template (product photos: no people)."""
    return default_content_rules(campaign.template_version.template.name)


def quality_policy_ensure(*, campaign: Campaign) -> QualityPolicy:
    """The campaign's policy; a campaign submitted without one (generation alone) gets the
    site defaults the first time one of its images is scored."""
    policy, _ = QualityPolicy.objects.get_or_create(
        campaign=campaign,
        defaults={
            "approve_at": settings.STUDIO_QUALITY_APPROVE_AT,
            "reject_below": settings.STUDIO_QUALITY_REJECT_BELOW,
            # A callable: evaluated only when the policy is created.
            "content_rules": lambda: _template_rules(campaign),
        },
    )
    return policy


def quality_policy_update(
    *,
    policy: QualityPolicy,
    approve_at: float,
    reject_below: float,
    unwanted_concepts: list[str] | None = None,
    content_rules: list[dict] | None = None,
) -> QualityPolicy:
    """New thresholds (and optionally unwanted concepts and content rules) for a campaign;
    applies to images scored from now on. Everything is validated before anything is
    written; InputError names the field."""
    approve_at, reject_below = quality_thresholds_check(
        approve_at=approve_at, reject_below=reject_below
    )
    rules = check_content_rules(content_rules) if content_rules is not None else None
    concepts = None
    if unwanted_concepts is not None:
        concepts = [c.strip() for c in unwanted_concepts if c.strip()]
        if any(len(c) > 100 for c in concepts):
            raise InputError("unwanted_concepts", "each concept must be at most 100 characters")
    policy.approve_at, policy.reject_below = approve_at, reject_below
    fields = ["approve_at", "reject_below", "updated_at"]
    if concepts is not None:
        policy.unwanted_concepts = list(dict.fromkeys(concepts))
        fields.append("unwanted_concepts")
    if rules is not None:
        policy.content_rules = rules
        fields.append("content_rules")
    policy.save(update_fields=fields)
    return policy


def reference_image_add(*, campaign: Campaign, upload, user) -> ReferenceImage:
    """Store a style reference for a campaign (PNG, JPEG or WEBP), with its perceptual hash."""
    from review.quality import load_image
    from review.quality.similarity import phash_hex

    data = upload.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise InputError("image", f"larger than {MAX_REFERENCE_BYTES // 2**20} MB")
    try:
        image = load_image(io.BytesIO(data))
    except ValueError as exc:
        raise InputError("image", str(exc).split(": ", 1)[-1]) from None
    buffer = io.BytesIO()
    # Re-encoded: never store the uploaded bytes as they came.
    image.save(buffer, format="PNG")
    reference = ReferenceImage(campaign=campaign, phash=phash_hex(image), uploaded_by=user)
    reference.image.save(f"{campaign.pk}.png", ContentFile(buffer.getvalue()), save=False)
    reference.save()
    return reference
