"""Automatic quality results, per-campaign policies, the human review queue and its audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from review.vocabulary import ReasonCode, Verdict, reason_label

__all__ = ["ReasonCode", "Verdict"]  # re-exported: callers import both from here too


def default_weights() -> dict[str, float]:
    return dict(settings.STUDIO_QUALITY_WEIGHTS)


def default_unwanted_concepts() -> list[str]:
    return list(settings.STUDIO_QUALITY_UNWANTED_CONCEPTS)


def default_content_rules() -> list[dict]:
    """The rules every template gets (services add the per-template ones at creation)."""
    from review.quality.content import default_content_rules as rules

    return rules()


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
    tag_vocabulary = models.JSONField(
        default=list,
        blank=True,
        help_text="Words CLIP may tag images with, besides STUDIO_CLIP_TAGS.",
    )
    content_rules = models.JSONField(
        default=default_content_rules,
        blank=True,
        help_text='What the content detector may not find: [{"code": "nsfw" | "person", '
        '"classes": [...], "min_score": 0.2-1, "action": "reject" | "review"}].',
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
    """The automatic verdict on one image, with everything behind it kept apart."""

    item = models.OneToOneField("generation.Item", on_delete=models.CASCADE, related_name="quality")
    scores = models.JSONField(default=dict, help_text="Score name -> 0..1 (1 = good).")
    measures = models.JSONField(default=dict, help_text="The raw measurements behind the scores.")
    overall = models.FloatField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    reasons = models.JSONField(
        default=list, help_text='What is wrong: [{"code", "text", "detail"}], codes ReasonCode.'
    )
    reason_codes = ArrayField(
        models.CharField(max_length=30, choices=ReasonCode.choices),
        default=list,
        blank=True,
        help_text="The codes of ``reasons``, indexed: 'rejected for blur' is one query.",
    )
    notes = models.JSONField(default=list, blank=True, help_text="Not problems: CLIP skipped...")
    hard_fail = models.BooleanField(default=False, help_text="Blank, black or noise frame.")
    basis = models.JSONField(
        default=dict, blank=True, help_text="The policy rule that decided, with its numbers."
    )
    palette = models.JSONField(
        default=list, blank=True, help_text='Dominant colours: [{"name", "share", "rgb"}].'
    )
    clip_tags = models.JSONField(
        default=list, blank=True, help_text='Zero-shot CLIP tags: [{"tag", "score"}].'
    )
    detections = models.JSONField(
        default=list,
        blank=True,
        help_text='The content detector\'s findings: [{"class", "score", "box": [x, y, w, h]}] '
        'in image pixels, with "rule" (the reason code) where a campaign rule fired.',
    )
    screen = models.CharField(
        max_length=12,
        blank=True,
        help_text='Content screening: "clear", "review" or "reject" (what the rules made of the '
        'detections), "unavailable" (the detector could not look), empty (not screened).',
    )
    subject_box = models.JSONField(
        default=list,
        blank=True,
        help_text="[x, y, w, h] where sharpness was measured (the subject); empty: whole frame.",
    )
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

    class Meta:
        indexes = [GinIndex(fields=["reason_codes"], name="quality_reason_codes_gin")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.verdict} ({self.overall:.2f})"

    def explanation(self) -> str:
        from review.quality.policy import explain

        return explain(self.basis)

    def overlay(self) -> list[dict]:
        """What to draw over the image, as percentages of it: each detection (``flagged``
        when a rule fired on it) and the region sharpness was measured on."""
        width, height = self.measures.get("width"), self.measures.get("height")
        if not width or not height:
            return []

        def place(box) -> dict:
            x, y, w, h = box
            return {
                "left": round(100 * x / width, 2),
                "top": round(100 * y / height, 2),
                "width": round(100 * w / width, 2),
                "height": round(100 * h / height, 2),
            }

        boxes = [
            place(d["box"])
            | {
                "kind": "detection",
                "label": f"{d['class'].replace('_', ' ').lower()} {d['score']:.2f}",
                "rule": d.get("rule", ""),
            }
            for d in self.detections
            if len(d.get("box", [])) == 4
        ]
        if len(self.subject_box) == 4:
            boxes.append(
                place(self.subject_box) | {"kind": "subject", "label": "sharpness measured here"}
            )
        return boxes


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
    reason_code = models.CharField(max_length=30, choices=ReasonCode.choices, blank=True)
    reason = models.TextField(blank=True, help_text="The reviewer's own words, if any.")
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

    def reason_display(self) -> str:
        """The reviewer's reason for people: "Blurry: soft edges"."""
        label = reason_label(self.reason_code) if self.reason_code else ""
        return ": ".join(part for part in (label, self.reason) if part)


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
        # The policy was recalibrated and the image, still waiting, was re-decided under it.
        REROUTE = "reroute", "Re-routed by a recalibration"

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.DECIDE)
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    reason_code = models.CharField(max_length=30, choices=ReasonCode.choices, blank=True)
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
