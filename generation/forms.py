from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from generation.matrix import lora_matrix_parse
from generation.models import Priority, PromptTemplateVersion, Purpose, Recipe, SeedPolicy
from generation.prompts import ENCODINGS, ParsedCsv, decode_csv
from generation.services.budgets import budget_amount_check, month_parse
from generation.sizes import CHANNELS
from studio.errors import MAX_ERRORS_SHOWN, InputError

# The field an InputError names (a service's argument) -> the form field that shows it.
_ERROR_FIELDS = {
    "name": "name",
    "csv": "csv_file",
    "template": "template",
    "recipe": "recipe",
    "size": "recipe",
    "variations": "variations",
    "seed_policy": "seed_policy",
    "base_seed": "base_seed",
    "approve_at": "approve_at",
    "reject_below": "reject_below",
    "recipes": "recipe",
    "channels": "channels",
    "priority": "priority",
    "csv_encoding": "csv_encoding",
    "budget_cap": "budget_cap",
    "budget": "budget_confirm",
    "seeds": "variations",
    "lora_matrix": "lora_matrix",
    "matrix_recipes": "matrix_recipes",
    "matrix_templates": "matrix_templates",
    "guidance": "guidance",
    "steps": "steps",
    "matrix": "matrix_mode",
}

# An upload is kept between posts of the form (a failed Create must not make the user attach
# the file again): stored under PENDING_DIR, named in the page by a token signed for the user.
PENDING_DIR = "uploads/pending"
PENDING_MAX_AGE = timedelta(days=1)
_PENDING_SALT = "generation.forms.pending-csv"
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


@dataclass(frozen=True)
class KeptUpload:
    token: str
    filename: str
    path: str


def _pending_salt(user_id) -> str:
    # The user id in the salt: another user's token does not verify for this one.
    return f"{_PENDING_SALT}:{user_id}"


def _pending_sweep() -> None:
    """Delete kept uploads older than PENDING_MAX_AGE; their tokens have expired anyway."""
    try:
        _folders, names = default_storage.listdir(PENDING_DIR)
    except (OSError, NotImplementedError):
        return
    cutoff = timezone.now() - PENDING_MAX_AGE
    for name in names:
        path = f"{PENDING_DIR}/{name}"
        try:
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
        except (OSError, NotImplementedError):
            pass  # another request swept it first, or the storage cannot tell


def pending_upload_keep(data: bytes, *, filename: str, user_id) -> KeptUpload:
    """Store an upload until the user's next post of the form; old ones are swept on the way."""
    _pending_sweep()
    key = uuid.uuid4().hex
    path = default_storage.save(f"{PENDING_DIR}/{key}.csv", ContentFile(data))
    token = signing.dumps({"key": key, "name": filename}, salt=_pending_salt(user_id))
    return KeptUpload(token, filename, path)


def pending_upload_open(token: str, *, user_id) -> tuple[KeptUpload, bytes]:
    """The upload a token names, if it is this user's and still kept; else ValidationError."""
    again = "attach the CSV file again"
    try:
        payload = signing.loads(
            token, salt=_pending_salt(user_id), max_age=PENDING_MAX_AGE.total_seconds()
        )
        key, filename = uuid.UUID(hex=payload["key"]).hex, str(payload["name"])
    except signing.SignatureExpired:
        raise forms.ValidationError(
            f"The file kept from your last try has expired; {again}."
        ) from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise forms.ValidationError(f"The kept file is not one of your uploads; {again}.") from None
    path = f"{PENDING_DIR}/{key}.csv"
    try:
        with default_storage.open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        raise forms.ValidationError(f"The file kept from your last try is gone; {again}.") from None
    return KeptUpload(token, filename, path), data


class TemplateVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PromptTemplateVersion) -> str:
        return f"{obj.template.name} v{obj.version}"


class RecipeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Recipe) -> str:
        size = f"{obj.width}×{obj.height}"
        return f"{obj.name} v{obj.version} — {obj.base_model}, {size}, {obj.steps} steps"


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    template = TemplateVersionChoiceField(
        queryset=PromptTemplateVersion.objects.none(),
        empty_label="Choose a template…",
        help_text="The active version of each prompt template.",
    )
    recipe = RecipeChoiceField(
        queryset=Recipe.objects.none(),
        empty_label="Choose a recipe…",
        help_text="Model, LoRAs, steps and size: the active version of each recipe.",
    )
    csv_file = forms.FileField(
        label="CSV file",
        required=False,  # a file kept from the last post will do (clean_csv_file)
        help_text="The first line names the columns the template uses; separated by commas, "
        "semicolons, tabs or |.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )
    csv_encoding = forms.ChoiceField(
        label="Encoding",
        choices=[("auto", "Detect (UTF-8, UTF-16 or Windows-1252)"), *ENCODINGS.items()],
        initial="auto",
        required=False,
        help_text="Detect reads UTF-8 whenever the file is valid UTF-8. Choose Mac Roman or "
        "Latin-1 if the preview shows wrong letters.",
    )
    variations = forms.IntegerField(min_value=1, initial=1)  # max set from settings per form
    seed_policy = forms.ChoiceField(choices=SeedPolicy.choices, initial=SeedPolicy.FIXED)
    base_seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text="Leave empty for a random one (it is recorded).",
    )
    hero_recipe = RecipeChoiceField(
        queryset=Recipe.objects.none(),
        required=False,
        empty_label="—",
        help_text="For rows whose purpose column says hero.",
    )
    variation_recipe = RecipeChoiceField(
        queryset=Recipe.objects.none(), required=False, empty_label="—"
    )
    thumbnail_recipe = RecipeChoiceField(
        queryset=Recipe.objects.none(), required=False, empty_label="—"
    )
    channels = forms.MultipleChoiceField(
        choices=[(name, f"{name} ({w}×{h})") for name, (w, h) in CHANNELS.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="One image per channel, generated at the nearest size the model supports.",
    )
    custom_size = forms.CharField(
        required=False,
        max_length=20,
        help_text="Another channel size, WIDTHxHEIGHT, e.g. 1200x628.",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL, required=False)
    # The variation matrix (generation.matrix); ``variations`` is its seeds axis.
    lora_matrix = forms.CharField(
        required=False,
        label="LoRA weight matrix",
        max_length=4000,
        widget=forms.TextInput(attrs={"placeholder": "style-a=0.4,0.8;style-b=0,0.5"}),
        help_text="Every combination of each LoRA's weights (NAME or NAME:VERSION; 0 leaves "
        'it out), or JSON named sets: [{"name": "soft", "weights": {"style-a": 0.4}}].',
    )
    matrix_recipes = forms.ModelMultipleChoiceField(
        queryset=Recipe.objects.none(),
        required=False,
        label="Compare recipes",
        help_text="The same rows and seeds under each recipe (an A/B test: two versions). "
        "Replaces the recipe above.",
    )
    matrix_templates = forms.ModelMultipleChoiceField(
        queryset=PromptTemplateVersion.objects.none(),
        required=False,
        label="Compare template versions",
        help_text="The same rows and seeds with each version's prompt (an A/B test of two "
        "versions of one template). Replaces the template above.",
    )
    guidance = forms.CharField(
        required=False, max_length=200, label="Guidance scales", help_text="e.g. 5, 7.5"
    )
    steps = forms.CharField(
        required=False, max_length=200, label="Step counts", help_text="e.g. 20, 30"
    )
    matrix_mode = forms.ChoiceField(
        choices=[
            ("product", "Product: every combination"),
            ("zip", "Zip: pair the axes' values up"),
        ],
        initial="product",
        required=False,
        label="Combine",
    )
    approve_at = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Approve at (score ≥)"
    )
    reject_below = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Reject below (score <)"
    )
    budget_cap = forms.CharField(
        required=False,
        max_length=20,
        label="Budget cap",
        help_text="The most this campaign may spend; it pauses itself there. Empty: no cap.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 250.00"}),
    )
    budget_confirm = forms.BooleanField(
        required=False,
        label="Create it anyway: the estimate is over budget",
        help_text="The campaign pauses itself when its cap or the month's budget is reached.",
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user_id = getattr(user, "pk", None)  # None: uploads are not kept
        self.csv_upload = b""  # the file's bytes as uploaded or kept
        self.csv_bytes = b""  # what the services read (UTF-8 when an encoding was chosen)
        self.csv_filename = ""
        self.kept: KeptUpload | None = None
        self.fields["template"].queryset = (
            PromptTemplateVersion.objects.filter(is_active=True)
            .select_related("template")
            .order_by("template__name")
        )
        self.fields["recipe"].queryset = (
            Recipe.objects.filter(is_active=True).select_related("base_model").order_by("name")
        )
        for purpose in Purpose.values:
            self.fields[f"{purpose}_recipe"].queryset = self.fields["recipe"].queryset
        self.matrix: dict = {}
        self.fields["matrix_recipes"].queryset = Recipe.objects.select_related(
            "base_model"
        ).order_by("name", "version")
        self.fields["matrix_templates"].queryset = PromptTemplateVersion.objects.select_related(
            "template"
        ).order_by("template__name", "version")
        self.fields["matrix_templates"].label_from_instance = str
        for name in ("template", "recipe"):
            field = self.fields[name]
            only = list(field.queryset[:2])
            if len(only) == 1:
                field.initial = only[0].pk
        maximum = settings.STUDIO_MAX_VARIATIONS
        self.fields["variations"] = forms.IntegerField(
            min_value=1,
            max_value=maximum,
            initial=1,
            label="Variations (seeds per row)",
            help_text=f"Images per CSV row and matrix cell, one seed each (1–{maximum}).",
        )
        approve, reject = settings.STUDIO_QUALITY_APPROVE_AT, settings.STUDIO_QUALITY_REJECT_BELOW
        self.fields["approve_at"].widget.attrs.update(placeholder=f"{approve}", step="0.01")
        self.fields["reject_below"].widget.attrs.update(placeholder=f"{reject}", step="0.01")
        self.fields["approve_at"].help_text = f"Empty: {approve}."
        self.fields["reject_below"].help_text = f"Empty: {reject}. Scores in between go to review."

    def clean_csv_file(self) -> UploadedFile | None:
        """The uploaded file, or the one kept from the last post when none is attached."""
        upload: UploadedFile | None = self.cleaned_data.get("csv_file")
        token = self.data.get("csv_token", "")
        if upload is None:
            if not token:
                raise forms.ValidationError("Attach a CSV file.")
            if self.user_id is None:
                raise forms.ValidationError("Attach the CSV file again.")
            self.kept, self.csv_upload = pending_upload_open(token, user_id=self.user_id)
            self.csv_filename = self.kept.filename
            return None
        cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if upload.size is not None and upload.size > cap:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {cap:,} bytes "
                "(STUDIO_MAX_UPLOAD_BYTES)"
            )
        upload.seek(0)
        data = upload.read(cap + 1)
        if len(data) > cap:
            raise forms.ValidationError(f"The file is larger than {cap:,} bytes")
        self.csv_upload, self.csv_filename = data, (upload.name or "upload.csv")[:255]
        return upload

    def clean_budget_cap(self):
        value = (self.cleaned_data.get("budget_cap") or "").strip()
        if not value:
            return None
        try:
            return budget_amount_check(value, field="budget_cap")
        except InputError as exc:
            raise forms.ValidationError(exc.errors[0].message) from None

    def clean_custom_size(self) -> str:
        size = self.cleaned_data.get("custom_size", "")
        # People write 1200 x 628, 1200X628 and 1200×628 as often as 1200x628.
        size = re.sub(r"\s+", "", size).lower().replace("×", "x")
        if size and not _SIZE.match(size):
            raise forms.ValidationError("Write the size as WIDTHxHEIGHT, e.g. 1200x628.")
        return size

    def clean(self) -> dict:
        data = super().clean()
        self.matrix = {"mode": data.get("matrix_mode") or "product"}
        try:
            self.matrix |= lora_matrix_parse(data.get("lora_matrix") or "")
        except InputError as exc:
            self.add_input_error(exc)
        if data.get("matrix_recipes"):
            self.matrix["recipes"] = [f"{r.name}:{r.version}" for r in data["matrix_recipes"]]
        if data.get("matrix_templates"):
            self.matrix["templates"] = [v.pk for v in data["matrix_templates"]]
        for axis in ("guidance", "steps"):
            if (data.get(axis) or "").strip():
                self.matrix[axis] = data[axis]
        encoding = data.get("csv_encoding") or "auto"
        if not self.csv_upload or encoding == "auto":
            self.csv_bytes = self.csv_upload  # the services detect the encoding themselves
            return data
        # campaign_plan reads UTF-8 first, so a file decoded as chosen reaches it as UTF-8.
        try:
            text, _encoding, _note = decode_csv(self.csv_upload, encoding)
        except InputError as exc:
            self.add_input_error(exc)
        else:
            self.csv_bytes = text.encode("utf-8")
        return data

    def reading(self, parsed: ParsedCsv) -> str:
        """How the file was read, in words, for the preview."""
        encoding = self.cleaned_data.get("csv_encoding") or "auto"
        if encoding == "auto":
            return parsed.reading
        chosen = ParsedCsv(parsed.columns, encoding=encoding, encoding_note="as chosen")
        chosen.delimiter = parsed.delimiter
        return chosen.reading

    def keep_upload(self) -> None:
        """Keep the file just uploaded for the next post of the form (call it when the form is
        shown again); the kept file it replaces is deleted."""
        if self.kept or not self.csv_upload or self.user_id is None:
            return
        token = self.data.get("csv_token", "")
        if token:
            try:
                replaced, _data = pending_upload_open(token, user_id=self.user_id)
            except forms.ValidationError:
                pass
            else:
                default_storage.delete(replaced.path)
        self.kept = pending_upload_keep(
            self.csv_upload, filename=self.csv_filename, user_id=self.user_id
        )

    def discard_kept_upload(self) -> None:
        """Delete the kept file once a campaign was made from it."""
        if self.kept:
            default_storage.delete(self.kept.path)
            self.kept = None

    def service_kwargs(self) -> dict:
        """Arguments shared by campaign_plan and campaign_submit."""
        return {
            "template_version": self.cleaned_data["template"],
            "recipe": self.cleaned_data["recipe"],
            "csv_bytes": self.csv_bytes,
            "variations": self.cleaned_data["variations"],
            "matrix": self.matrix,
            "recipes": {
                purpose: self.cleaned_data[f"{purpose}_recipe"]
                for purpose in Purpose.values
                if self.cleaned_data.get(f"{purpose}_recipe")
            },
            "channels": [*self.cleaned_data.get("channels", [])]
            + ([self.cleaned_data["custom_size"]] if self.cleaned_data.get("custom_size") else []),
        }

    def submit_kwargs(self) -> dict:
        data = self.cleaned_data
        return self.service_kwargs() | {
            "name": data["name"],
            "csv_filename": self.csv_filename,
            "seed_policy": data["seed_policy"],
            "base_seed": data["base_seed"],
            "approve_at": data["approve_at"],
            "reject_below": data["reject_below"],
            "priority": data.get("priority") or Priority.NORMAL,
            "budget_cap": data.get("budget_cap"),
            "budget_confirmed": bool(data.get("budget_confirm")),
        }

    def add_input_error(self, error: InputError) -> None:
        """Show each message of a service's InputError on the field it names."""
        shown = error.errors[:MAX_ERRORS_SHOWN]
        for problem in shown:
            self.add_error(_ERROR_FIELDS.get(problem.field), problem.message)
        if len(error.errors) > len(shown):
            self.add_error(None, f"… and {len(error.errors) - len(shown)} more problems.")

    def error_summary(self) -> list[str]:
        """Every error as one line, led by the label of the field it belongs to."""
        lines = []
        for field, errors in self.errors.items():
            for message in errors:
                lines.append(message if field == "__all__" else f"{self[field].label}: {message}")
        return lines


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)


class CampaignBudgetForm(forms.Form):
    """A manager sets (or removes) a campaign's cap, and may resume it at once."""

    cap = forms.CharField(
        required=False,
        max_length=20,
        label="Cap",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 250.00"}),
    )
    resume = forms.BooleanField(required=False, label="Resume the campaign")
    remove = forms.BooleanField(required=False, label="Remove the cap")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("remove"):
            data["cap"] = None
            return data
        try:
            data["cap"] = budget_amount_check(data.get("cap"), field="cap")
        except InputError as exc:
            self.add_error("cap", exc.errors[0].message)
        return data


class MonthBudgetForm(forms.Form):
    """The workspace's budget for one month."""

    month = forms.CharField(max_length=7, label="Month", help_text="YYYY-MM")
    amount = forms.CharField(
        max_length=20,
        label="Budget",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 5000.00"}),
    )

    def clean_month(self):
        try:
            return month_parse(self.cleaned_data["month"], field="month")
        except InputError as exc:
            raise forms.ValidationError(exc.errors[0].message) from None

    def clean_amount(self):
        try:
            return budget_amount_check(self.cleaned_data["amount"], field="amount")
        except InputError as exc:
            raise forms.ValidationError(exc.errors[0].message) from None


class TrialForm(forms.Form):
    """An A/B trial: two recipes (e.g. two versions of one), or two versions of one prompt
    template, on a sample of a campaign's rows, the same rows and seeds under each (a campaign
    with a recipe axis, or a template axis)."""

    recipe_a = RecipeChoiceField(queryset=Recipe.objects.none(), label="Recipe A", required=False)
    recipe_b = RecipeChoiceField(queryset=Recipe.objects.none(), label="Recipe B", required=False)
    template_a = TemplateVersionChoiceField(
        queryset=PromptTemplateVersion.objects.none(),
        label="or Template version A",
        required=False,
    )
    template_b = TemplateVersionChoiceField(
        queryset=PromptTemplateVersion.objects.none(),
        label="Template version B",
        required=False,
    )
    rows = forms.IntegerField(min_value=1, initial=10, label="Rows", help_text="A sample of rows.")
    seeds = forms.IntegerField(min_value=1, initial=1, label="Seeds per row")

    def __init__(self, *args, campaign=None, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        recipes = Recipe.objects.select_related("base_model").order_by("name", "version")
        self.fields["recipe_a"].queryset = self.fields["recipe_b"].queryset = recipes
        versions = PromptTemplateVersion.objects.select_related("template").order_by(
            "template__name", "version"
        )
        self.fields["template_a"].queryset = self.fields["template_b"].queryset = versions
        if campaign is not None:
            self.fields["recipe_a"].initial = campaign.recipe_id
            self.fields["rows"].widget.attrs["max"] = max(1, len(campaign.csv_rows or []))
            self.fields["rows"].initial = min(10, len(campaign.csv_rows or []) or 1)

    def clean(self) -> dict:
        """Two template versions (then the recipes are ignored: the trial keeps the campaign's
        recipe), else two recipes."""
        data = super().clean()
        templates = [data.get("template_a"), data.get("template_b")]
        if any(templates):
            for name, value in zip(("template_a", "template_b"), templates, strict=True):
                if not value:
                    self.add_error(name, "choose both template versions to compare")
            data["templates"], data["recipes"] = [t for t in templates if t], []
        else:
            for name in ("recipe_a", "recipe_b"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "choose two recipes, or two template versions")
            data["recipes"] = [r for r in (data.get("recipe_a"), data.get("recipe_b")) if r]
            data["templates"] = []
        return data
