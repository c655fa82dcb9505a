"""Admin for the registry, campaigns and items.

Versions are immutable: an existing version is read-only here, and a new one is added through
the generation services (which number it, hash its files and make it the active one).
"""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest

from generation import services
from generation.models import (
    BaseModelVersion,
    Campaign,
    Item,
    LoraVersion,
    PromptTemplate,
    PromptTemplateVersion,
    Recipe,
    RecipeLora,
)
from generation.prompts import InputError, template_placeholders


def _adopt(obj, created) -> None:
    """Point the admin's unsaved instance at the row a service created."""
    obj.pk = created.pk
    obj._state.adding = False
    obj.refresh_from_db()


class ActivateMixin:
    """An action that makes the selected version the active one of its name (rollback)."""

    actions = ["activate_version"]

    @admin.action(description="Make the selected version the active one")
    def activate_version(self, request: HttpRequest, queryset) -> None:
        seen: set[str] = set()
        for obj in queryset:
            if obj.name in seen:
                self.message_user(
                    request, f"Skipped {obj}: pick one version per name.", messages.WARNING
                )
                continue
            seen.add(obj.name)
            with transaction.atomic():
                services._activate(obj, name=obj.name)
            self.message_user(request, f"{obj} is now active.")


class BaseModelAddForm(forms.ModelForm):
    class Meta:
        model = BaseModelVersion
        fields = ["name", "backend", "source", "sha256", "cost_per_image", "notes"]
        help_texts = {
            "source": "diffusers: a hub id or local path. AUTOMATIC1111: the checkpoint's title "
            "or model_name on the server. Stability: core, ultra, sd3 or an sd3 model name.",
            "sha256": "AUTOMATIC1111 only: the checkpoint's sha256 (or 10-digit short hash) to "
            "pin; local diffusers files are hashed automatically.",
        }

    def clean_sha256(self) -> str:
        value = (self.cleaned_data.get("sha256") or "").strip().lower()
        if value and not (len(value) in (10, 64) and all(c in "0123456789abcdef" for c in value)):
            raise forms.ValidationError("Give the 64 hex digits, or the 10-digit short hash.")
        return value


@admin.register(BaseModelVersion)
class BaseModelVersionAdmin(ActivateMixin, admin.ModelAdmin):
    list_display = ["name", "version", "backend", "source", "short_sha", "is_active", "created_at"]
    list_filter = ["backend", "is_active"]
    search_fields = ["name", "source", "sha256"]
    readonly_fields = [
        "name",
        "version",
        "backend",
        "source",
        "sha256",
        "cost_per_image",
        "is_active",
        "created_at",
    ]

    @admin.display(description="sha256")
    def short_sha(self, obj: BaseModelVersion) -> str:
        return obj.sha256[:12]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = BaseModelAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return BaseModelAddForm.Meta.fields
        return [*self.readonly_fields, "notes"]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            BaseModelVersion.objects.filter(pk=obj.pk).update(notes=obj.notes)
            return
        created = services.base_model_register(
            name=obj.name,
            source=obj.source,
            backend=obj.backend,
            cost_per_image=obj.cost_per_image,
            sha256=obj.sha256 if obj.backend == "automatic1111" else "",
        )
        if obj.notes:
            BaseModelVersion.objects.filter(pk=created.pk).update(notes=obj.notes)
        _adopt(obj, created)


class LoraAddForm(forms.ModelForm):
    class Meta:
        model = LoraVersion
        fields = ["name", "file", "default_weight"]

    def clean(self):
        data = super().clean()
        if data.get("file") and not Path(data["file"]).expanduser().exists():
            self.add_error("file", "This file does not exist on the server.")
        return data


@admin.register(LoraVersion)
class LoraVersionAdmin(ActivateMixin, admin.ModelAdmin):
    list_display = ["name", "version", "file", "default_weight", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "file", "sha256"]
    readonly_fields = [
        "name",
        "version",
        "file",
        "sha256",
        "default_weight",
        "is_active",
        "created_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = LoraAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else LoraAddForm.Meta.fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        created = services.lora_register(
            name=obj.name, file=obj.file, default_weight=obj.default_weight
        )
        _adopt(obj, created)


def _recipe_in_use(recipe: Recipe | None) -> bool:
    return (
        recipe is not None
        and recipe.pk is not None
        and Campaign.objects.filter(recipe=recipe).exists()
    )


class RecipeLoraInline(admin.TabularInline):
    model = RecipeLora
    extra = 0
    autocomplete_fields = ["lora"]

    def _locked(self, obj) -> bool:
        return _recipe_in_use(obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_delete_permission(request, obj)


@admin.register(Recipe)
class RecipeAdmin(ActivateMixin, admin.ModelAdmin):
    """A recipe can be edited until a campaign uses it; after that, add a new version."""

    list_display = [
        "name",
        "version",
        "purpose",
        "base_model",
        "steps",
        "guidance_scale",
        "width",
        "height",
        "is_active",
    ]
    list_filter = ["purpose", "is_active"]
    search_fields = ["name"]
    inlines = [RecipeLoraInline]
    autocomplete_fields = ["base_model"]

    def get_readonly_fields(self, request, obj=None):
        if _recipe_in_use(obj):
            return [f.name for f in Recipe._meta.fields if f.name != "id"]
        return ["created_at", "is_active"] if obj else ["created_at"]


class PromptTemplateForm(forms.ModelForm):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 100}),
        required=False,
        help_text="Saving a changed text adds a new version and makes it active; "
        "{column} placeholders name CSV columns.",
    )
    negative_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 100}), required=False
    )

    class Meta:
        model = PromptTemplate
        fields = ["name", "description"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.active_version() if self.instance.pk else None
        if current is not None:
            self.fields["body"].initial = current.body
            self.fields["negative_prompt"].initial = current.negative_prompt
        else:
            self.fields["body"].required = True

    def clean(self):
        data = super().clean()
        try:
            template_placeholders(data.get("body") or "", field_name="body")
            template_placeholders(data.get("negative_prompt") or "", field_name="negative_prompt")
        except InputError as exc:
            for message in exc.errors:
                field = "negative_prompt" if message.startswith("negative_prompt") else "body"
                self.add_error(field, message)
        return data


class PromptTemplateVersionInline(admin.TabularInline):
    model = PromptTemplateVersion
    extra = 0
    can_delete = False
    fields = [
        "version",
        "body",
        "negative_prompt",
        "placeholders",
        "is_active",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    form = PromptTemplateForm
    list_display = ["name", "active_version_label", "description", "created_at"]
    search_fields = ["name", "description"]
    inlines = [PromptTemplateVersionInline]

    @admin.display(description="active version")
    def active_version_label(self, obj: PromptTemplate) -> str:
        version = obj.active_version()
        return f"v{version.version}" if version else "—"

    def get_readonly_fields(self, request, obj=None):
        # Campaigns and the service find a template by name: keep it stable.
        return ["name"] if obj else []

    def save_model(self, request, obj, form, change) -> None:
        body = form.cleaned_data.get("body") or ""
        negative = form.cleaned_data.get("negative_prompt") or ""
        if change:
            PromptTemplate.objects.filter(pk=obj.pk).update(description=obj.description)
            if not body.strip():
                return
        version = services.prompt_template_version_create(
            name=obj.name,
            body=body,
            negative_prompt=negative,
            description=obj.description,
            user=request.user,
        )
        if not change:
            _adopt(obj, version.template)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns are created on the campaign page (campaign_submit); here they are read."""

    list_display = [
        "name",
        "status",
        "priority",
        "template_version",
        "recipe",
        "variations",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "priority", "seed_policy"]
    search_fields = ["name", "csv_filename"]
    date_hierarchy = "created_at"
    list_select_related = ["template_version__template", "recipe", "created_by"]
    actions = ["pause", "resume", "cancel", "retry"]

    def has_add_permission(self, request) -> bool:
        return False

    def _control(self, request: HttpRequest, queryset, action: str) -> None:
        for campaign in queryset:
            try:
                self.message_user(
                    request, services.campaign_control(campaign=campaign, action=action)
                )
            except InputError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.WARNING)

    @admin.action(description="Pause the selected campaigns")
    def pause(self, request: HttpRequest, queryset) -> None:
        self._control(request, queryset, "pause")

    @admin.action(description="Resume the selected campaigns")
    def resume(self, request: HttpRequest, queryset) -> None:
        self._control(request, queryset, "resume")

    @admin.action(description="Cancel the selected campaigns (queued items)")
    def cancel(self, request: HttpRequest, queryset) -> None:
        self._control(request, queryset, "cancel")

    @admin.action(description="Retry the failed items of the selected campaigns")
    def retry(self, request: HttpRequest, queryset) -> None:
        self._control(request, queryset, "retry")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "purpose",
        "channel",
        "seed",
        "attempts",
        "worker_host",
        "queued_s",
        "duration_s",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "purpose", "channel"]
    search_fields = ["prompt", "=id", "job_id"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign", "base_model", "recipe"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
