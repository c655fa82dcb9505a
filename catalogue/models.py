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
    # The delivery stage's last outcome: {"error": why it failed (retried), "refused":
    # {channel: why}, "at": when}; empty before the first delivery.
    delivery = models.JSONField(default=dict, blank=True)
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

    @property
    def ab_label(self) -> str:
        """A, B, C... for the variations of one CSV row (AA after Z), for A/B tests."""
        n, label = self.item.variation, ""
        while True:
            n, rest = divmod(n, 26)
            label = chr(65 + rest) + label
            if n == 0:
                return label
            n -= 1


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


# --- Delivery: renditions, watermark, exports, posting schedule ------------------------------


class Delivery(models.Model):
    """How a campaign's approved images are delivered: the channels each asset gets a
    rendition for, their formats, the upscale limit and the watermark. One row per campaign
    (catalogue.delivery.renditions.delivery_for makes the default); ``version`` goes up with
    every change, and renditions made under an older version are made again."""

    class Watermark(models.TextChoices):
        NONE = "none", "None"
        TEXT = "text", "Text"
        LOGO = "logo", "Logo image"

    class Position(models.TextChoices):
        TOP_LEFT = "top-left", "Top left"
        TOP_RIGHT = "top-right", "Top right"
        BOTTOM_LEFT = "bottom-left", "Bottom left"
        BOTTOM_RIGHT = "bottom-right", "Bottom right"
        CENTRE = "centre", "Centre"

    campaign = models.OneToOneField(
        "generation.Campaign", primary_key=True, on_delete=models.CASCADE, related_name="delivery"
    )
    # Channel names (generation.sizes.CHANNELS) or custom "WxH"; empty: the campaign's own
    # channels, else the item's channel, else web-thumbnail.
    channels = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    # channel -> "jpeg" | "webp" | "png" | "avif"; a channel not named takes its default.
    formats = models.JSONField(default=dict, blank=True)
    quality = models.PositiveSmallIntegerField(default=90, help_text="JPEG/WebP/AVIF, 1-100.")
    # A rendition that enlarges the master more than this is "upscaled ×N" (or refused).
    max_upscale = models.FloatField(default=2.0)
    refuse_upscaled = models.BooleanField(
        default=False, help_text="Refuse a channel that needs more than max_upscale."
    )
    watermark = models.CharField(max_length=10, choices=Watermark.choices, default="none")
    watermark_text = models.CharField(max_length=200, blank=True)
    watermark_logo = models.FileField(max_length=300, blank=True)
    watermark_position = models.CharField(
        max_length=20, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    watermark_margin = models.FloatField(default=0.03, help_text="Fraction of the short side.")
    watermark_opacity = models.FloatField(default=0.5, help_text="0-1.")
    watermark_scale = models.FloatField(
        default=0.2, help_text="The mark's width as a fraction of the rendition's width."
    )
    # The channels the watermark applies to; empty: all of them.
    watermark_channels = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"delivery of {self.campaign_id} v{self.version}"


class Rendition(models.Model):
    """One delivered file of an asset for one channel, at the channel's exact size, with the
    provenance embedded (infotext, XMP, C2PA when signing is configured)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="renditions")
    channel = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)  # jpeg | webp | png | avif
    file = models.FileField(max_length=300)
    bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    # [x, y, w, h] of the master that the rendition shows.
    crop = models.JSONField(default=list)
    upscale = models.FloatField(default=1.0, help_text="How much the master was enlarged.")
    upscaled = models.BooleanField(default=False, help_text="Enlarged more than max_upscale.")
    watermarked = models.BooleanField(default=False)
    signed = models.BooleanField(default=False, help_text="Carries a C2PA manifest.")
    # What it was made from: Delivery.version and the rights stamp; another value -> remade.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "channel"], name="rendition_asset_channel")
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.channel} {self.width}x{self.height}"


class Export(models.Model):
    """A zip of renditions with manifest.json and manifest.csv, from a campaign or a catalogue
    search; built on the delivery queue (catalogue.delivery.exports), streamed to storage."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    class Layout(models.TextChoices):
        DEFAULT = "default", "By channel"
        GAME_ENGINE = "game-engine", "Game engine (folders per asset type)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(
        "generation.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The catalogue search it was made from (the search form's cleaned values as strings).
    search = models.JSONField(default=dict, blank=True)
    layout = models.CharField(max_length=20, choices=Layout.choices, default=Layout.DEFAULT)
    include_expired = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    file = models.FileField(max_length=300, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    # [{"asset", "item", "title", "reason"}]: what the selection had and the zip has not.
    left_out = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "lease_until"], name="export_status_lease")]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"


class PostingSlot(models.Model):
    """When and where an approved image of a social campaign is posted: one row per platform
    and time; exported as CSV and iCalendar (catalogue.delivery.schedule)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="slots")
    platform = models.CharField(max_length=40)  # a channel name
    starts_at = models.DateTimeField(help_text="Stored in UTC.")
    time_zone = models.CharField(max_length=64, help_text="IANA name it was given in.")
    caption = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "platform"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "platform", "starts_at"], name="slot_asset_platform_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} on {self.platform} at {self.starts_at:%Y-%m-%d %H:%M}"
