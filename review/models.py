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
    return {"sharpness": 1.0, "exposure": 1.0, "contrast": 1.0}


class QualityPolicy(models.Model):
    """Routes an image by its overall score: >= approve_at approved, < reject_below rejected."""

    campaign = models.OneToOneField(
        "generation.Campaign", on_delete=models.CASCADE, related_name="quality_policy"
    )
    approve_at = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    reject_below = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    weights = models.JSONField(default=default_weights)
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
    item = models.OneToOneField(
        "generation.Item", on_delete=models.CASCADE, related_name="quality"
    )
    scores = models.JSONField(default=dict)
    overall = models.FloatField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.item_id}: {self.verdict} ({self.overall:.2f})"


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
    """Audit trail: every decision is a new row; nothing here is ever updated."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.decision} by {self.reviewer} at {self.created_at:%Y-%m-%d %H:%M}"
