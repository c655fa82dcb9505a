"""The registry (versioned models, LoRAs, recipes, prompt templates), campaigns and items.

Versions are immutable once used; an ``is_active`` flag per name picks the version new work
uses, so rolling back is one action. Items pin the exact versions, seed and parameters.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Backend(models.TextChoices):
    DIFFUSERS = "diffusers", "diffusers (local)"
    AUTOMATIC1111 = "automatic1111", "AUTOMATIC1111"
    STABILITY = "stability", "Stability AI"


class BaseModelVersion(models.Model):
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.DIFFUSERS)
    source = models.CharField(
        max_length=500, help_text="A Hugging Face id (org/name) or a local folder or file."
    )
    sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 over the model files; empty for hub ids."
    )
    cost_per_image = models.DecimalField(max_digits=10, decimal_places=5, default=0)
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="basemodel_name_version"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(is_active=True), name="basemodel_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class LoraVersion(models.Model):
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    file = models.CharField(max_length=500, help_text="Path to the .safetensors file.")
    sha256 = models.CharField(max_length=64)
    default_weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(-4.0), MaxValueValidator(4.0)]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="lora_name_version"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(is_active=True), name="lora_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Purpose(models.TextChoices):
    HERO = "hero", "Hero"
    VARIATION = "variation", "Variation"
    THUMBNAIL = "thumbnail", "Thumbnail"


class Recipe(models.Model):
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.VARIATION)
    base_model = models.ForeignKey(BaseModelVersion, on_delete=models.PROTECT)
    steps = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    guidance_scale = models.FloatField(
        default=7.5, validators=[MinValueValidator(0.0), MaxValueValidator(30.0)]
    )
    width = models.PositiveIntegerField(default=512)
    height = models.PositiveIntegerField(default=512)
    scheduler = models.CharField(max_length=60, blank=True, help_text="Empty: the model's own.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="recipe_name_version"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(is_active=True), name="recipe_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class RecipeLora(models.Model):
    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="loras")
    lora = models.ForeignKey(LoraVersion, on_delete=models.PROTECT)
    weight = models.FloatField(validators=[MinValueValidator(-4.0), MaxValueValidator(4.0)])
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["recipe", "lora"], name="recipelora_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.lora} @ {self.weight}"


class PromptTemplate(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def active_version(self) -> PromptTemplateVersion | None:
        return self.versions.filter(is_active=True).first()


class PromptTemplateVersion(models.Model):
    """Immutable: a change to a template is a new version (generation.services)."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    body = models.TextField(help_text="Prompt with {placeholder} fields named after CSV columns.")
    negative_prompt = models.TextField(blank=True)
    placeholders = models.JSONField(default=list, editable=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="template_version"),
            models.UniqueConstraint(
                fields=["template"], condition=Q(is_active=True), name="template_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.version}"


class SeedPolicy(models.TextChoices):
    FIXED = "fixed", "Derived from the campaign's base seed (reproducible)"
    RANDOM = "random", "Random per item (recorded)"


class Priority(models.TextChoices):
    HIGH = "high", "High (ahead of the queue)"
    NORMAL = "normal", "Normal"


class PauseReason(models.TextChoices):
    MANUAL = "manual", "Paused by a person"
    BUDGET = "budget", "Budget reached"


class Campaign(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    # Every change of status, by name: action -> (the statuses it starts from, the status it
    # leads to). generation.services.campaign_transition is the only writer and refuses the rest.
    TRANSITIONS = {
        "pause": ((Status.RUNNING,), Status.PAUSED),
        "resume": ((Status.PAUSED,), Status.RUNNING),
        "cancel": ((Status.RUNNING, Status.PAUSED), Status.CANCELLED),
        # Every item reached a final status.
        "complete": ((Status.RUNNING,), Status.COMPLETED),
        # New work for a completed campaign: a regenerated item, a retry, an undone decision.
        "reopen": ((Status.COMPLETED,), Status.RUNNING),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    template_version = models.ForeignKey(PromptTemplateVersion, on_delete=models.PROTECT)
    recipe = models.ForeignKey(Recipe, on_delete=models.PROTECT)
    csv_filename = models.CharField(max_length=255, blank=True)
    csv_columns = models.JSONField(default=list)
    csv_rows = models.JSONField(default=list)
    variations = models.PositiveIntegerField(default=1)
    seed_policy = models.CharField(
        max_length=10, choices=SeedPolicy.choices, default=SeedPolicy.FIXED
    )
    base_seed = models.BigIntegerField(default=0)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    channels = models.JSONField(
        default=list, blank=True, help_text="Output channels, e.g. ['instagram', 'tiktok']."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Budget: the most this campaign may spend (ledger entries plus work in flight); None: no
    # cap. Reaching it pauses the campaign with pause_reason "budget" (generation.services.
    # budgets); a manager raises it and resumes.
    budget_cap = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    pause_reason = models.CharField(max_length=10, choices=PauseReason.choices, blank=True)
    pause_note = models.CharField(max_length=300, blank=True, help_text="Why, in words.")
    # The variation matrix (generation.matrix): its axes as given, normalised; {} for a
    # campaign that varies only the seed.
    matrix = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def paused_for_budget(self) -> bool:
        return self.status == self.Status.PAUSED and self.pause_reason == PauseReason.BUDGET


class CampaignRecipe(models.Model):
    """The recipe a campaign uses for one purpose (rows pick a purpose in a ``purpose`` column)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipes")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    recipe = models.ForeignKey(Recipe, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["purpose"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "purpose"], name="campaignrecipe_purpose"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose}: {self.recipe}"


class Item(models.Model):
    """One image to generate. Status is the source of truth; Redis only carries work."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Generating"
        SCORING = "scoring", "Scoring"
        REVIEW = "review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATUSES = (Status.APPROVED, Status.REJECTED, Status.FAILED, Status.CANCELLED)
    # The changes other stages may ask for (generation.services.item_status_change): scoring
    # routes a generated image, a reviewer decides one, an undo puts it back in review.
    VERDICT_TRANSITIONS = {
        Status.SCORING: (Status.APPROVED, Status.REVIEW, Status.REJECTED),
        Status.REVIEW: (Status.APPROVED, Status.REJECTED),
        Status.APPROVED: (Status.REVIEW,),
        Status.REJECTED: (Status.REVIEW,),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    row_index = models.PositiveIntegerField()
    variation = models.PositiveIntegerField()
    channel = models.CharField(
        max_length=40, blank=True, help_text="Output channel; empty: the campaign's own size."
    )
    target_width = models.PositiveIntegerField(
        null=True, blank=True, help_text="The size delivery crops/resizes to."
    )
    target_height = models.PositiveIntegerField(null=True, blank=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.VARIATION)
    recipe = models.ForeignKey(Recipe, null=True, blank=True, on_delete=models.PROTECT)
    template_version = models.ForeignKey(
        PromptTemplateVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The template version its prompt was expanded from (a template axis varies "
        "it; else the campaign's).",
    )
    row_data = models.JSONField(default=dict)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField()
    params = models.JSONField(default=dict, help_text="Every generation parameter, pinned.")
    run = models.JSONField(
        default=dict,
        blank=True,
        help_text="Facts of the run that made the image (batch size, batch-invariant mode, "
        "provider details); not inputs: a regenerated item starts without them.",
    )
    base_model = models.ForeignKey(BaseModelVersion, on_delete=models.PROTECT)
    loras = models.JSONField(default=list, help_text="Pinned LoRA versions with weights.")
    axes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Its cell of the campaign's variation matrix, e.g. {'seed': 3, 'lora': "
        "{'style-a': 0.4}, 'recipe': 'x v2', 'guidance': 7.5}.",
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    job_id = models.CharField(max_length=100, blank=True, help_text="The RQ job carrying it.")
    image = models.FileField(blank=True, max_length=300)  # named by the generation job
    worker_host = models.CharField(max_length=200, blank=True)
    queued_s = models.FloatField(
        null=True, blank=True, help_text="Seconds between being queued and the last claim."
    )
    duration_s = models.FloatField(
        null=True, blank=True, help_text="Seconds generating (this image's share of its batch)."
    )
    # The sum of this item's CostEntry rows (the ledger is the source of truth; this copy is
    # kept in step by generation.services.ledger.cost_record), unrounded.
    cost = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    cost_detail = models.JSONField(
        default=dict, blank=True, help_text="How its generation cost was computed."
    )
    error = models.TextField(blank=True)
    regenerated_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="regenerations",
        help_text="The rejected item this one was regenerated from (same recipe, new seed).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Last (re)queued.")
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["row_index", "variation"]
        constraints = [
            # Regenerations share their original's row and variation.
            models.UniqueConstraint(
                fields=["campaign", "row_index", "variation", "channel"],
                condition=models.Q(regenerated_from__isnull=True),
                name="item_campaign_row_variation",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            # A recipe's latest images: expected cost, speed and throughput (budgets).
            models.Index(fields=["recipe", "generated_at"], name="item_recipe_generated"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign.name} row {self.row_index + 1} #{self.variation + 1}"

    def provenance(self) -> dict:
        """Where the image came from: prompt, seed, pinned versions, every parameter, the row."""
        return {
            "item": str(self.pk),
            "campaign": str(self.campaign_id),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
            "params": self.params,
            "run": self.run,
            "channel": self.channel,
            "target_size": [self.target_width, self.target_height] if self.target_width else None,
            "base_model": {
                "name": self.base_model.name,
                "version": self.base_model.version,
                "source": self.base_model.source,
                "sha256": self.base_model.sha256,
                "backend": self.base_model.backend,
            },
            "loras": self.loras,
            "axes": self.axes,
            "row": self.row_data,
        }


# --- Cost ledger and budgets ----------------------------------------------------------------


class CostEntry(models.Model):
    """One cost, where it was spent: the ledger every cost figure is read from.

    ``amount`` is in settings.STUDIO_CURRENCY (recorded in ``currency``), unrounded (10
    places); money is rounded once, when shown. ``quantity`` × ``rate`` (price per ``unit``)
    is ``amount``; ``detail`` names the setting the rate came from. Each entry carries what it
    belongs to (item, campaign, recipe, base model, LoRA and template versions, month), so a
    report is one GROUP BY. ``key`` makes recording idempotent: a job that runs twice, or a
    decision recorded again, writes nothing new (generation.services.ledger.cost_record).
    """

    class Kind(models.TextChoices):
        COMPUTE = "compute", "Compute"
        API = "api", "API"
        STORAGE = "storage", "Storage"
        REVIEW = "review", "Review labour"

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=20, decimal_places=10)
    currency = models.CharField(max_length=3)
    quantity = models.DecimalField(max_digits=24, decimal_places=10)
    unit = models.CharField(max_length=30, help_text="gpu_second, credit, image, gib_month…")
    rate = models.DecimalField(max_digits=24, decimal_places=14, help_text="Price per unit.")
    occurred_at = models.DateTimeField()
    month = models.DateField(help_text="The first day of the month it is booked to.")
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    recipe = models.ForeignKey(
        Recipe, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_model = models.ForeignKey(
        BaseModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The pinned LoRA versions: their ids, and "name:version" (sorted) so that a model + LoRA
    # combination is one GROUP BY (base_model, loras).
    lora_versions = ArrayField(models.BigIntegerField(), default=list, blank=True)
    loras = ArrayField(models.CharField(max_length=120), default=list, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The reviewer, for review labour.",
    )
    host = models.CharField(max_length=200, blank=True, help_text="The worker host, if any.")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name_plural = "cost entries"
        indexes = [
            models.Index(fields=["month", "kind"], name="cost_month_kind"),
            models.Index(fields=["campaign", "kind"], name="cost_campaign_kind"),
            models.Index(fields=["item"], name="cost_item"),
            models.Index(fields=["recipe", "month"], name="cost_recipe_month"),
            models.Index(fields=["recipe", "occurred_at"], name="cost_recipe_time"),
            models.Index(fields=["base_model", "month"], name="cost_model_month"),
            models.Index(fields=["template_version", "month"], name="cost_template_month"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} ({self.key})"


class MonthlyBudget(models.Model):
    """The workspace's budget for one month (every campaign's spend together)."""

    month = models.DateField(unique=True, help_text="The first day of the month.")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.amount}"


class BudgetAlert(models.Model):
    """A threshold (80 or 100 % of a cap) that was reached, once per cap: managers were told
    by e-mail and the pages show it. Raising a cap arms its thresholds again."""

    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="budget_alerts"
    )
    month = models.DateField(null=True, blank=True, help_text="For the monthly budget.")
    threshold = models.PositiveSmallIntegerField()
    cap = models.DecimalField(max_digits=14, decimal_places=2)
    spent = models.DecimalField(max_digits=20, decimal_places=10)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "threshold", "cap"],
                condition=Q(campaign__isnull=False),
                name="budgetalert_campaign_once",
            ),
            models.UniqueConstraint(
                fields=["month", "threshold", "cap"],
                condition=Q(month__isnull=False),
                name="budgetalert_month_once",
            ),
            models.CheckConstraint(
                condition=(Q(campaign__isnull=False) & Q(month__isnull=True))
                | (Q(campaign__isnull=True) & Q(month__isnull=False)),
                name="budgetalert_one_scope",
            ),
        ]

    def __str__(self) -> str:
        scope = self.campaign_id or f"{self.month:%Y-%m}"
        return f"{self.threshold}% of {self.cap} reached ({scope})"
