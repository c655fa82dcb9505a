"""Published assets with their provenance and rights, and the catalogue's entry for every image
(what search reads)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone


def _expired(until, today=None) -> bool:
    return bool(until and until < (today or timezone.localdate()))


class Asset(models.Model):
    class Status(models.TextChoices):
        PUBLISHED = "published", "Published"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Withdrawal(models.TextChoices):
        # The item's approval was undone: the catalogue follows the item, and publishes the
        # asset again if the item is approved again.
        REVIEW = "review", "Approval undone in review"
        # A person withdrew it on purpose: nothing automatic ever publishes it again.
        ADMIN = "admin", "Withdrawn by an admin"

    class Rights(models.TextChoices):
        INTERNAL = "internal", "Internal use only"
        CAMPAIGN = "campaign", "Cleared for this campaign"
        UNRESTRICTED = "unrestricted", "Cleared for any use"
        CUSTOM = "custom", "Custom licence"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.OneToOneField("generation.Item", on_delete=models.PROTECT, related_name="asset")
    campaign = models.ForeignKey(
        "generation.Campaign", on_delete=models.PROTECT, related_name="assets"
    )
    title = models.CharField(max_length=300)
    prompt = models.TextField()
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    fields = models.JSONField(default=dict, help_text="The CSV row the image was made from.")
    provenance = models.JSONField(default=dict)
    image = models.FileField(max_length=300)
    thumbnail = models.FileField(max_length=300, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PUBLISHED)
    withdrawn_reason = models.CharField(max_length=20, choices=Withdrawal.choices, blank=True)
    withdrawn_note = models.TextField(blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    rights = models.CharField(max_length=20, choices=Rights.choices, default=Rights.INTERNAL)
    rights_custom = models.TextField(blank=True, help_text="The licence, when it is custom.")
    rights_channels = ArrayField(
        models.CharField(max_length=40), default=list, blank=True, help_text="Empty: any."
    )
    rights_territories = ArrayField(
        models.CharField(max_length=2),
        default=list,
        blank=True,
        help_text="ISO 3166-1; empty: any.",
    )
    rights_from = models.DateField(null=True, blank=True)
    rights_until = models.DateField(null=True, blank=True)
    rights_notes = models.TextField(blank=True)
    rights_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rights_set_at = models.DateTimeField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    approved_by = models.CharField(
        max_length=150, help_text="A reviewer's username, or 'automatic'."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            # The media view asks, for every file it serves, whether a withdrawn asset owns
            # it; withdrawn assets are few, so these stay small.
            models.Index(
                fields=["image"],
                condition=models.Q(status="withdrawn"),
                name="asset_withdrawn_image",
            ),
            models.Index(
                fields=["thumbnail"],
                condition=models.Q(status="withdrawn"),
                name="asset_withdrawn_thumbnail",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def rights_expired(self, today=None) -> bool:
        return _expired(self.rights_until, today)


class RightsChange(models.Model):
    """Audit trail of usage rights: every change is a new row with the values before/after."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="rights_changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"rights of {self.asset_id} by {self.changed_by} at {self.created_at:%Y-%m-%d %H:%M}"


class Entry(models.Model):
    """The catalogue's row for every image a campaign made, whatever its status: what search,
    filters and facets read. Kept in step with its item by catalogue.services.entries_sync
    (the "index" stage, and the reconciler); never written by another app."""

    item = models.OneToOneField(
        "generation.Item", primary_key=True, on_delete=models.CASCADE, related_name="entry"
    )
    campaign = models.ForeignKey(
        "generation.Campaign", on_delete=models.CASCADE, related_name="entries"
    )
    status = models.CharField(max_length=20)  # the item's status
    published = models.BooleanField(default=False)  # has a published asset
    # The asset's status ("" without one): a withdrawn asset leaves the default search.
    asset_status = models.CharField(max_length=20, blank=True, default="", db_default="")
    verdict = models.CharField(max_length=10, blank=True)  # the automatic verdict
    reason_codes = ArrayField(models.CharField(max_length=30), default=list, blank=True)
    reviewer = models.CharField(max_length=150, blank=True)  # who decided, if a person did
    template_version = models.ForeignKey(
        "generation.PromptTemplateVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipe = models.ForeignKey(
        "generation.Recipe", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_name = models.CharField(max_length=100)
    model_version = models.PositiveIntegerField()
    loras = ArrayField(models.CharField(max_length=120), default=list, blank=True)  # name:version
    lora_names = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    purpose = models.CharField(max_length=20, blank=True)
    channel = models.CharField(max_length=40, blank=True)
    rights = models.CharField(max_length=20, blank=True)
    rights_until = models.DateField(null=True)
    # Tags with where they came from: [{"tag", "source", "score"}], sources csv, colour,
    # quality, manual. ``tag_names`` is what filters and facets read.
    tags = models.JSONField(default=list, blank=True)
    tag_names = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    # A person's edits survive re-indexing: added tags, and automatic ones they removed.
    tags_added = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    tags_removed = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    title = models.CharField(max_length=300)
    generated_at = models.DateTimeField(null=True)
    approved_at = models.DateTimeField(null=True)
    score = models.FloatField(null=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    search_vector = SearchVectorField(null=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-generated_at"]
        verbose_name_plural = "entries"
        indexes = [
            GinIndex(fields=["search_vector"], name="entry_search_gin"),
            GinIndex(fields=["reason_codes"], name="entry_reasons_gin"),
            GinIndex(fields=["loras"], name="entry_loras_gin"),
            GinIndex(fields=["tag_names"], name="entry_tags_gin"),
            models.Index(fields=["campaign", "status"], name="entry_campaign_status"),
            models.Index(fields=["status", "generated_at"], name="entry_status_generated"),
            models.Index(fields=["generated_at"], name="entry_generated"),
            models.Index(fields=["model_name", "model_version"], name="entry_model"),
        ]

    def __str__(self) -> str:
        return self.title

    def rights_expired(self, today=None) -> bool:
        return _expired(self.rights_until, today)


class CampaignValue(models.Model):
    """What an approved image of a campaign is worth to the business (or what the alternative,
    e.g. a photo shoot, costs per image): the value side of the managers' ROI."""

    campaign = models.OneToOneField(
        "generation.Campaign", primary_key=True, on_delete=models.CASCADE, related_name="value"
    )
    value_per_image = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.CharField(max_length=200, blank=True, help_text="e.g. 'photo shoot: £45'.")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.value_per_image} per approved image"
