"""Versions a manager trusts: every base model, LoRA, recipe and prompt template by name, its
versions, which one new work uses, and who activated what when (the admin's History entries
that generation.services.registry writes); rolling back is activating an older version."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from generation import services
from generation.models import BaseModelVersion, LoraVersion, PromptTemplateVersion, Recipe

# kind -> (label, model, activate service)
KINDS = {
    "template": (
        "Prompt templates",
        PromptTemplateVersion,
        services.prompt_template_version_activate,
    ),
    "recipe": ("Recipes", Recipe, services.recipe_activate),
    "model": ("Base models", BaseModelVersion, services.base_model_activate),
    "lora": ("LoRAs", LoraVersion, services.lora_activate),
}


@dataclass
class Line:
    """One name (a template, a recipe, a model, a LoRA): its versions, newest first, and its
    history, newest first."""

    kind: str
    name: str
    versions: list = field(default_factory=list)
    history: list = field(default_factory=list)

    @property
    def active(self):
        return next((v for v in self.versions if v.is_active), None)


def _name(kind: str, version) -> str:
    return version.template.name if kind == "template" else version.name


def version_lines(kind: str) -> list[Line]:
    label, model, _ = KINDS[kind]
    versions = model.objects.order_by("-version")
    if kind == "template":
        versions = versions.select_related("template")
    lines: dict[str, Line] = {}
    for version in versions:
        name = _name(kind, version)
        lines.setdefault(name, Line(kind=kind, name=name)).versions.append(version)
    # The History entries: on the template for template versions, on each version otherwise.
    if kind == "template":
        owners = {
            str(v.template_id): _name(kind, v) for line in lines.values() for v in line.versions
        }
        content_type = ContentType.objects.get_for_model(
            PromptTemplateVersion.template.field.related_model
        )
    else:
        owners = {str(v.pk): line.name for line in lines.values() for v in line.versions}
        content_type = ContentType.objects.get_for_model(model)
    history = defaultdict(list)
    for entry in (
        LogEntry.objects.filter(content_type=content_type, object_id__in=list(owners))
        .select_related("user")
        .order_by("-action_time")
    ):
        history[owners[entry.object_id]].append(entry)
    for name, line in lines.items():
        line.history = history[name][:20]
    return sorted(lines.values(), key=lambda line: line.name)


def version_activate(*, kind: str, pk: int, user) -> tuple[object, object]:
    """Activate one version (a rollback when it is older); (the version, the one it replaced)."""
    _, model, activate = KINDS[kind]
    version = model.objects.get(pk=pk)
    same = {"template_id": version.template_id} if kind == "template" else {"name": version.name}
    previous = model.objects.filter(is_active=True, **same).exclude(pk=pk).first()
    activate(version=version, user=user)
    return version, previous
