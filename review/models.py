"""Automatic quality results, per-campaign policies, the human review queue and its audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Verdict(models.TextChoices):
    APPROVED = "approved", "Approved"
    REVIEW = "review", "Needs review"
    REJECTED = "rejected", "Rejected"


def default_weights() -> dict[str, float]:
    return dict(settings.STUDIO_QUALITY_WEIGHTS)


def default_unwanted_concepts() -> list[str]:
    return list(settings.STUDIO_QUALITY_UNWANTED_CONCEPTS)


class QualityPolicy(models.Model):
    """Routes an image by its overall score: >= approve_at approved, < reject_below rejected."""

    campaign = models.OneToOneField(
        "generation.Campaign", on_delete=models.CASCADE, related_name="quality_policy"
    )
    approve_at = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    reject_below = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    weights = models.JSONField(default=default_weights)
    unwanted_concepts = models.JSONField(
        default=default_unwanted_concepts,
        blank=True,
        help_text='Concepts ("text", "watermark", "extra fingers") an image must not match '
        "better than its own prompt (CLIP).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "quality policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reject_below__lte=models.F("approve_at")),
                name="policy_thresholds_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"policy for {self.campaign}"


class QualityResult(models.Model):
    item = models.OneToOneField("generation.Item", on_delete=models.CASCADE, related_name="quality")
    scores = models.JSONField(default=dict)
    overall = models.FloatField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    reasons = models.JSONField(default=list)
    # 64-bit perceptual hash as 16 hex digits: near-duplicates within a campaign are one
    # indexed query (Hamming distance in SQL), never a rescan of the images.
    phash = models.CharField(max_length=16, blank=True, db_index=True)
    campaign = models.ForeignKey(
        "generation.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_results",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.item_id}: {self.verdict} ({self.overall:.2f})"


class ReferenceImage(models.Model):
    """A picture the creative uploads as the campaign's look; style = phash distance to these."""

    campaign = models.ForeignKey(
        "generation.Campaign", on_delete=models.CASCADE, related_name="reference_images"
    )
    image = models.FileField(upload_to="references/%Y/%m/", max_length=300)
    phash = models.CharField(max_length=16)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"reference for {self.campaign_id} ({self.phash})"


class ReviewTask(models.Model):
    """One borderline image waiting for a human. Claimed with a lease, never a held lock."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DECIDED = "decided", "Decided"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.OneToOneField(
        "generation.Item", on_delete=models.CASCADE, related_name="review_task"
    )
    campaign = models.ForeignKey(
        "generation.Campaign", on_delete=models.CASCADE, related_name="review_tasks"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_claims",
    )
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_decisions_made",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "lease_until", "created_at"])]

    def __str__(self) -> str:
        return f"review of {self.item_id} ({self.status})"


class ReviewDecision(models.Model):
    """Audit trail: every decision is a new row; nothing here is ever updated.

    An undo is a new row with ``action=undo`` naming the decision it reverses (``decision``
    keeps the verdict that was undone); a send-back (regenerate) is a row with
    ``action=send_back``.
    """

    class Action(models.TextChoices):
        DECIDE = "decide", "Decision"
        UNDO = "undo", "Undo"
        SEND_BACK = "send_back", "Sent back for a new seed"

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.DECIDE)
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    # What the automatic scores leaned to (the nearer threshold) when the human decided:
    # agreement statistics compare the two.
    automatic_verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reversed_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["reviewer", "created_at"])]

    def __str__(self) -> str:
        return (
            f"{self.action} {self.decision} by {self.reviewer} at {self.created_at:%Y-%m-%d %H:%M}"
        )
