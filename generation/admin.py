"""Admin for the registry, campaigns and items.

Versions are immutable: an existing version is read-only here, and a new one is added through
the generation services (which number it, hash its files, make it the active one and record
who did it on its History page). "Activate this version" makes an older version the active
one again: a rollback is one action.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse

from generation import services
from generation.hashing import check_sha256
from generation.models import (
    BaseModelVersion,
    BudgetAlert,
    Campaign,
    CostEntry,
    Item,
    LoraVersion,
    MonthlyBudget,
    PromptTemplate,
    PromptTemplateVersion,
    Recipe,
    RecipeLora,
)
from generation.prompts import template_placeholders
from generation.sizes import check_size
from studio.admin import ReadOnlyAdmin
from studio.errors import InputError


def _adopt(obj, created) -> None:
    """Point the admin's unsaved instance at the row a service created."""
    obj.pk = created.pk
    obj._state.adding = False
    obj.refresh_from_db()


def _add_input_errors(form: forms.Form, exc: InputError) -> None:
    for problem in exc.errors:
        if problem.field in form.fields:
            form.add_error(problem.field, problem.message)
        else:
            form.add_error(None, str(problem))


class ActivateVersionMixin:
    """Adding goes through a registry service and "Activate this version" through another;
    both record who did what on the History page, so the admin logs no addition of its own.

    The button posts to ``<pk>/activate/`` from outside the change form (pressing Enter in a
    field must not activate anything); the changelist has the same as an action.
    """

    change_form_template = "admin/generation/version_change_form.html"
    activate_service: Callable  # the <entity>_activate service, as a staticmethod

    def get_urls(self):
        opts = self.opts
        return [
            # Before the ModelAdmin's own: its "<path:object_id>/" would match this too.
            path(
                "<path:object_id>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name=f"{opts.app_label}_{opts.model_name}_activate",
            ),
            *super().get_urls(),
        ]

    def _url(self, obj, view: str) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{view}",
            args=[obj.pk],
            current_app=self.admin_site.name,
        )

    def _chosen_version(self, request: HttpRequest, obj):
        """The version the button activates: the object itself, for a version's own page."""
        return obj

    def _activation_context(self, obj) -> dict:
        """What the button needs: on a version's own page, the URL while it is inactive."""
        return {} if obj.is_active else {"activate_url": self._url(obj, "activate")}

    def _activate_version(self, request: HttpRequest, version) -> None:
        if version.is_active:
            self.message_user(request, f"{version} is already the active version.")
            return
        self.activate_service(version=version, user=request.user)
        self.message_user(request, f"{version} is now the active version.", messages.SUCCESS)

    def activate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        version = self._chosen_version(request, obj)
        if version is None:
            self.message_user(request, "Pick a version of this template.", messages.ERROR)
        else:
            self._activate_version(request, version)
        return redirect(self._url(obj, "change"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None and self.has_change_permission(request, obj):
            context.update(self._activation_context(obj))
        return super().change_view(request, object_id, form_url, context)

    def construct_change_message(self, request, form, formsets, add=False):
        # On an addition the service has recorded "Added vN" (and not saved the inlines the
        # default message would read).
        return [] if add else super().construct_change_message(request, form, formsets, add)

    def log_addition(self, request, obj, message):
        return None


class VersionAdmin(ActivateVersionMixin, admin.ModelAdmin):
    """A versioned registry model with a name: base models, LoRAs and recipes."""

    actions = ["activate_selected"]

    @admin.action(
        description="Activate the selected versions (one per name)", permissions=["change"]
    )
    def activate_selected(self, request: HttpRequest, queryset) -> None:
        seen: set[str] = set()
        for version in queryset.order_by("name", "-version"):
            if version.name in seen:
                self.message_user(
                    request, f"Skipped {version}: pick one version per name.", messages.WARNING
                )
                continue
            seen.add(version.name)
            self._activate_version(request, version)


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
        try:
            return check_sha256(self.cleaned_data.get("sha256") or "")
        except InputError as exc:
            raise forms.ValidationError([e.message for e in exc.errors]) from exc


@admin.register(BaseModelVersion)
class BaseModelVersionAdmin(VersionAdmin):
    activate_service = staticmethod(services.base_model_activate)
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
            user=request.user,
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
class LoraVersionAdmin(VersionAdmin):
    activate_service = staticmethod(services.lora_activate)
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
            name=obj.name,
            file=obj.file,
            default_weight=obj.default_weight,
            user=request.user,
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


class RecipeForm(forms.ModelForm):
    class Meta:
        model = Recipe
        fields = [
            "purpose",
            "base_model",
            "steps",
            "guidance_scale",
            "width",
            "height",
            "scheduler",
        ]

    def clean(self):
        data = super().clean()
        if data.get("width") is not None and data.get("height") is not None:
            try:
                check_size(data["width"], data["height"], field="size")
            except InputError as exc:
                _add_input_errors(self, exc)
        return data


class RecipeAddForm(RecipeForm):
    # Not the model's is_active: recipe_create activates the new version and retires the old
    # one, so the form never checks the one-active-per-name constraint against the old one.
    activate = forms.BooleanField(
        label="Is active",
        initial=True,
        required=False,
        help_text="Make it the version new work uses; the active version of this name is "
        "retired (and can be activated again).",
    )

    class Meta(RecipeForm.Meta):
        fields = ["name", *RecipeForm.Meta.fields]


@admin.register(Recipe)
class RecipeAdmin(VersionAdmin):
    """A recipe can be edited until a campaign uses it; after that, add a new version.

    An added recipe goes through recipe_create (numbered, its LoRAs from the inline rows).
    """

    activate_service = staticmethod(services.recipe_activate)
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

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = RecipeAddForm if obj is None else RecipeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*RecipeAddForm.Meta.fields, "activate"]
        return ["name", "version", *RecipeForm.Meta.fields, "is_active", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if _recipe_in_use(obj):
            return [f.name for f in Recipe._meta.fields if f.name != "id"]
        # The name and number stay: campaigns and the services find a recipe by them.
        return ["name", "version", "is_active", "created_at"] if obj else []

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
        # An added recipe is created in save_related, once its inline LoRAs are known.

    def save_related(self, request, form, formsets, change) -> None:
        if change:
            super().save_related(request, form, formsets, change)
            return
        rows = [
            (f.cleaned_data.get("position") or 0, i, f.cleaned_data)
            for formset in formsets
            for i, f in enumerate(formset.forms)
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        data = form.cleaned_data
        created = services.recipe_create(
            name=data["name"],
            base_model=data["base_model"],
            loras=[(row["lora"], row["weight"]) for _, _, row in sorted(rows, key=lambda r: r[:2])],
            purpose=data["purpose"],
            steps=data["steps"],
            guidance_scale=data["guidance_scale"],
            width=data["width"],
            height=data["height"],
            scheduler=data["scheduler"],
            activate=data.get("activate", False),
            user=request.user,
        )
        _adopt(form.instance, created)


class PromptTemplateForm(forms.ModelForm):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 100}),
        required=False,
        help_text="Saving a changed text adds a new version and makes it active; "
        "{column} placeholders name CSV columns. To go back to an earlier version, use "
        '"Activate this version" above instead of retyping it.',
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
            _add_input_errors(self, exc)
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
class PromptTemplateAdmin(ActivateVersionMixin, admin.ModelAdmin):
    """A template's versions are listed on its page; "Activate this version" with one of the
    inactive ones picked rolls back to it (the History page records it)."""

    activate_service = staticmethod(services.prompt_template_version_activate)
    form = PromptTemplateForm
    list_display = ["name", "active_version_label", "description", "created_at"]
    search_fields = ["name", "description"]
    inlines = [PromptTemplateVersionInline]

    @admin.display(description="active version")
    def active_version_label(self, obj: PromptTemplate) -> str:
        version = obj.active_version()
        return f"v{version.version}" if version else "—"

    def _chosen_version(self, request: HttpRequest, obj: PromptTemplate):
        chosen = request.POST.get("version", "")
        return obj.versions.filter(pk=chosen).first() if chosen.isdigit() else None

    def _activation_context(self, obj: PromptTemplate) -> dict:
        choices = list(obj.versions.filter(is_active=False).order_by("-version"))
        if not choices:
            return {}
        return {"activate_url": self._url(obj, "activate"), "activate_choices": choices}

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
class ItemAdmin(ReadOnlyAdmin):
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


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "kind", "amount", "currency", "quantity", "unit", "campaign"]
    list_filter = ["kind", "unit", "month"]
    list_select_related = ["campaign"]
    search_fields = ["key", "campaign__name", "host"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["item", "campaign", "recipe", "base_model", "template_version", "user"]


@admin.register(MonthlyBudget)
class MonthlyBudgetAdmin(ReadOnlyAdmin):
    # Set with `manage.py budget` or the reports page, which validate and alert.
    list_display = ["month", "amount", "set_by", "updated_at"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "campaign", "month", "threshold", "cap", "spent"]
    list_select_related = ["campaign"]
