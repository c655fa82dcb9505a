"""The registry: base models, LoRAs, recipes and prompt templates, each kept as numbered
versions of which one per name is active."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import Max, Model

from generation.hashing import sha256_path
from generation.models import (
    Backend,
    BaseModelVersion,
    LoraVersion,
    PromptTemplate,
    PromptTemplateVersion,
    Purpose,
    Recipe,
    RecipeLora,
)
from generation.prompts import InputError, template_placeholders

MIN_SIDE, MAX_SIDE = 64, 2048


def _next_version(model: type[Model], **lookup) -> int:
    return (model.objects.filter(**lookup).aggregate(v=Max("version"))["v"] or 0) + 1


def _activate(obj: Model, **same_name) -> None:
    type(obj).objects.filter(**same_name, is_active=True).exclude(pk=obj.pk).update(is_active=False)
    type(obj).objects.filter(pk=obj.pk).update(is_active=True)
    obj.is_active = True


def _local_hash(source: str) -> str:
    path = Path(source).expanduser()
    return sha256_path(path) if path.exists() else ""


def _check_size(width: int, height: int, *, field: str) -> None:
    for label, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InputError(f"{field}: {label} {value} is outside {MIN_SIDE}-{MAX_SIDE} px")
        if value % 8:
            raise InputError(f"{field}: {label} {value} is not a multiple of 8")


@transaction.atomic
def base_model_register(
    *,
    name: str,
    source: str,
    backend: str = Backend.DIFFUSERS,
    cost_per_image: Decimal | str | float = 0,
    activate: bool = True,
    sha256: str = "",
) -> BaseModelVersion:
    """Register a base model version; a local source is hashed now and checked at each load.

    A remote checkpoint (AUTOMATIC1111) can be pinned with ``sha256`` as the server reports
    it; results from any other checkpoint are then refused. Registering the same source with
    the same content again returns the existing version.
    """
    if backend not in Backend.values:
        raise InputError(f"backend: {backend!r} is not one of {', '.join(Backend.values)}")
    if sha256 and not (
        len(sha256) in (10, 64) and all(c in "0123456789abcdef" for c in sha256.lower())
    ):
        raise InputError("sha256: give the 64 hex digits (or A1111's 10-digit short hash)")
    digest = _local_hash(source) if backend == Backend.DIFFUSERS else sha256.lower()
    latest = BaseModelVersion.objects.filter(name=name).order_by("-version").first()
    if latest and (latest.source, latest.sha256, latest.backend) == (source, digest, backend):
        version = latest
    else:
        version = BaseModelVersion.objects.create(
            name=name,
            version=_next_version(BaseModelVersion, name=name),
            backend=backend,
            source=source,
            sha256=digest,
            cost_per_image=Decimal(str(cost_per_image)),
            is_active=False,
        )
    if activate:
        _activate(version, name=name)
    return version


@transaction.atomic
def lora_register(
    *, name: str, file: str, default_weight: float = 1.0, activate: bool = True
) -> LoraVersion:
    path = Path(file).expanduser()
    if not path.exists():
        raise InputError(f"file: {file!r} does not exist")
    digest = sha256_path(path)
    latest = LoraVersion.objects.filter(name=name).order_by("-version").first()
    if latest and (latest.file, latest.sha256) == (str(file), digest):
        version = latest
    else:
        version = LoraVersion.objects.create(
            name=name,
            version=_next_version(LoraVersion, name=name),
            file=str(file),
            sha256=digest,
            default_weight=default_weight,
            is_active=False,
        )
    if activate:
        _activate(version, name=name)
    return version


@transaction.atomic
def recipe_create(
    *,
    name: str,
    base_model: BaseModelVersion,
    loras: list[tuple[LoraVersion, float]] = (),
    purpose: str = Purpose.VARIATION,
    steps: int = 30,
    guidance_scale: float = 7.5,
    width: int = 512,
    height: int = 512,
    scheduler: str = "",
    activate: bool = True,
) -> Recipe:
    """A new recipe version (or the latest one, if it is identical)."""
    _check_size(width, height, field="recipe size")
    wanted = {
        "purpose": purpose,
        "base_model_id": base_model.pk,
        "steps": steps,
        "guidance_scale": float(guidance_scale),
        "width": width,
        "height": height,
        "scheduler": scheduler,
    }
    wanted_loras = [(lora.pk, float(weight)) for lora, weight in loras]
    latest = Recipe.objects.filter(name=name).order_by("-version").first()
    if (
        latest
        and all(getattr(latest, k) == v for k, v in wanted.items())
        and [(rl.lora_id, rl.weight) for rl in latest.loras.all()] == wanted_loras
    ):
        recipe = latest
    else:
        recipe = Recipe.objects.create(
            name=name, version=_next_version(Recipe, name=name), is_active=False, **wanted
        )
        RecipeLora.objects.bulk_create(
            RecipeLora(recipe=recipe, lora_id=lora_id, weight=weight, position=i)
            for i, (lora_id, weight) in enumerate(wanted_loras)
        )
    if activate:
        _activate(recipe, name=name)
    return recipe


@transaction.atomic
def prompt_template_version_create(
    *,
    name: str,
    body: str,
    negative_prompt: str = "",
    description: str = "",
    user=None,
) -> PromptTemplateVersion:
    """Save a template's text as a new immutable version and make it the active one.

    An unchanged text returns the current version instead of adding a copy.
    """
    if not body.strip():
        raise InputError("body: the template is empty")
    placeholders = template_placeholders(body, field_name="body")
    template_placeholders(negative_prompt, field_name="negative_prompt")
    template, _ = PromptTemplate.objects.get_or_create(
        name=name, defaults={"description": description, "created_by": user}
    )
    if description and template.description != description:
        PromptTemplate.objects.filter(pk=template.pk).update(description=description)
    latest = template.versions.order_by("-version").first()
    if latest and latest.body == body and latest.negative_prompt == negative_prompt:
        version = latest
    else:
        version = PromptTemplateVersion.objects.create(
            template=template,
            version=_next_version(PromptTemplateVersion, template=template),
            body=body,
            negative_prompt=negative_prompt,
            placeholders=placeholders,
            is_active=False,
            created_by=user,
        )
    _activate(version, template=template)
    return version
