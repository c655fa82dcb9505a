from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from generation.models import Priority, PromptTemplateVersion, Purpose, Recipe, SeedPolicy
from generation.prompts import MAX_ERRORS_SHOWN, InputError
from generation.sizes import CHANNELS

# The prefix of an InputError message ("csv: row 3, column 'color' is empty") names the input;
# this maps it to the form field that shows the message.
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
}


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
        help_text="UTF-8, first line names the columns the template uses.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
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
    custom_size = forms.RegexField(
        regex=r"^\d{1,5}x\d{1,5}$",
        required=False,
        help_text="Another channel size, WIDTHxHEIGHT.",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL, required=False)
    approve_at = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Approve at (score ≥)"
    )
    reject_below = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Reject below (score <)"
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.csv_bytes = b""
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
            help_text=f"Images per CSV row (1–{maximum}).",
        )
        approve, reject = settings.STUDIO_QUALITY_APPROVE_AT, settings.STUDIO_QUALITY_REJECT_BELOW
        self.fields["approve_at"].widget.attrs.update(placeholder=f"{approve}", step="0.01")
        self.fields["reject_below"].widget.attrs.update(placeholder=f"{reject}", step="0.01")
        self.fields["approve_at"].help_text = f"Empty: {approve}."
        self.fields["reject_below"].help_text = f"Empty: {reject}. Scores in between go to review."

    def clean_csv_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["csv_file"]
        cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if upload.size is not None and upload.size > cap:
            raise forms.ValidationError(
                f"csv: the file is {upload.size:,} bytes; the limit is {cap:,} bytes "
                "(STUDIO_MAX_UPLOAD_BYTES)"
            )
        upload.seek(0)
        data = upload.read(cap + 1)
        if len(data) > cap:
            raise forms.ValidationError(f"csv: the file is larger than {cap:,} bytes")
        self.csv_bytes = data
        return upload

    def service_kwargs(self) -> dict:
        """Arguments shared by campaign_plan and campaign_submit."""
        return {
            "template_version": self.cleaned_data["template"],
            "recipe": self.cleaned_data["recipe"],
            "csv_bytes": self.csv_bytes,
            "variations": self.cleaned_data["variations"],
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
            "csv_filename": data["csv_file"].name[:255],
            "seed_policy": data["seed_policy"],
            "base_seed": data["base_seed"],
            "approve_at": data["approve_at"],
            "reject_below": data["reject_below"],
            "priority": data.get("priority") or Priority.NORMAL,
        }

    def add_input_error(self, error: InputError) -> None:
        """Show each message of a service's InputError on the field it names."""
        shown = error.errors[:MAX_ERRORS_SHOWN]
        for message in shown:
            prefix = message.split(":", 1)[0].strip()
            self.add_error(_ERROR_FIELDS.get(prefix), message)
        if len(error.errors) > len(shown):
            self.add_error(None, f"… and {len(error.errors) - len(shown)} more problems.")

    def error_summary(self) -> list[str]:
        """Every error as one line; a service message already names its input."""
        lines = []
        for field, errors in self.errors.items():
            for message in errors:
                named = field == "__all__" or message.split(":", 1)[0].strip() in _ERROR_FIELDS
                lines.append(message if named else f"{self[field].label}: {message}")
        return lines


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)
