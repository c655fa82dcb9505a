"""The registry: base models, LoRAs, recipes and prompt templates, each kept as numbered
versions of which one per name is active.

Activating a version retires the active one of its name, so rolling back is activating an
older version (``<entity>_activate``). When a service is told who acts (``user``) it writes an
admin LogEntry, so the admin's History page shows who added or activated which version, when.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import transaction
from django.db.models import Max, Model

from generation.hashing import check_sha256, sha256_path
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
from generation.prompts import template_placeholders
from generation.sizes import check_size
from studio.errors import InputError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Version = BaseModelVersion | LoraVersion | Recipe | PromptTemplateVersion


def _next_version(model: type[Model], **lookup) -> int:
    return (model.objects.filter(**lookup).aggregate(v=Max("version"))["v"] or 0) + 1


def _record(
    user: AbstractBaseUser | None, obj: Model, message: str, *, added: bool = False
) -> None:
    """An entry on the object's admin History page, when a person did it."""
    if user is None or getattr(user, "pk", None) is None:
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=ADDITION if added else CHANGE,
        change_message=message,
        single_object=True,
    )


def _history_of(version: Version) -> Model:
    # A template's versions have no admin page of their own; they are shown on the template's.
    return version.template if isinstance(version, PromptTemplateVersion) else version


def _activate(version: Version, *, user: AbstractBaseUser | None = None) -> None:
    """Make ``version`` the active one of its name and retire the one that was."""
    model = type(version)
    same_name = (
        {"template_id": version.template_id}
        if isinstance(version, PromptTemplateVersion)
        else {"name": version.name}
    )
    # Lock every version of the name: two activations at once would otherwise both retire the
    # old version, and the second would then break the one-active constraint.
    rows = {row.pk: row for row in model.objects.select_for_update().filter(**same_name)}
    if version.pk not in rows:
        raise InputError("version", f"{version} no longer exists")
    version.is_active = True
    if rows[version.pk].is_active:
        return
    previous = next((row for row in rows.values() if row.is_active), None)
    if previous is not None:
        model.objects.filter(pk=previous.pk).update(is_active=False)
    model.objects.filter(pk=version.pk).update(is_active=True)
    was = f" (was v{previous.version})" if previous is not None else ""
    _record(user, _history_of(version), f"Activated v{version.version}{was}")
    if previous is not None and not isinstance(version, PromptTemplateVersion):
        _record(user, previous, f"Retired v{previous.version} (v{version.version} activated)")


def _local_hash(source: str) -> str:
    path = Path(source).expanduser()
    return sha256_path(path) if path.exists() else ""


@transaction.atomic
def base_model_activate(
    *, version: BaseModelVersion, user: AbstractBaseUser | None = None
) -> BaseModelVersion:
    """Make this version the one new work uses, retiring the active one of its name (a
    rollback, when it is older). Activating the active version changes nothing."""
    _activate(version, user=user)
    return version


@transaction.atomic
def lora_activate(*, version: LoraVersion, user: AbstractBaseUser | None = None) -> LoraVersion:
    """Make this LoRA version the active one of its name; see base_model_activate."""
    _activate(version, user=user)
    return version


@transaction.atomic
def recipe_activate(*, version: Recipe, user: AbstractBaseUser | None = None) -> Recipe:
    """Make this recipe version the active one of its name; see base_model_activate."""
    _activate(version, user=user)
    return version


@transaction.atomic
def prompt_template_version_activate(
    *, version: PromptTemplateVersion, user: AbstractBaseUser | None = None
) -> PromptTemplateVersion:
    """Make this version its template's active one (a rollback needs no retyping); the
    template's History records it. See base_model_activate."""
    _activate(version, user=user)
    return version


@transaction.atomic
def base_model_register(
    *,
    name: str,
    source: str,
    backend: str = Backend.DIFFUSERS,
    cost_per_image: Decimal | str | float = 0,
    activate: bool = True,
    sha256: str = "",
    user: AbstractBaseUser | None = None,
) -> BaseModelVersion:
    """Register a base model version; a local source is hashed now and checked at each load.

    A remote checkpoint (AUTOMATIC1111) can be pinned with ``sha256`` as the server reports
    it; results from any other checkpoint are then refused. Registering the same source with
    the same content again returns the existing version.
    """
    if backend not in Backend.values:
        raise InputError("backend", f"{backend!r} is not one of {', '.join(Backend.values)}")
    pinned = check_sha256(sha256)
    digest = _local_hash(source) if backend == Backend.DIFFUSERS else pinned
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
        _record(user, version, f"Added v{version.version}", added=True)
    if activate:
        _activate(version, user=user)
    return version


@transaction.atomic
def lora_register(
    *,
    name: str,
    file: str,
    default_weight: float = 1.0,
    activate: bool = True,
    user: AbstractBaseUser | None = None,
) -> LoraVersion:
    path = Path(file).expanduser()
    if not path.exists():
        raise InputError("file", f"{file!r} does not exist")
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
        _record(user, version, f"Added v{version.version}", added=True)
    if activate:
        _activate(version, user=user)
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
    user: AbstractBaseUser | None = None,
) -> Recipe:
    """A new recipe version (or the latest one, if it is identical)."""
    check_size(width, height, field="recipe size")
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
        _record(user, recipe, f"Added v{recipe.version}", added=True)
    if activate:
        _activate(recipe, user=user)
    return recipe


@transaction.atomic
def prompt_template_version_create(
    *,
    name: str,
    body: str,
    negative_prompt: str = "",
    description: str = "",
    user: AbstractBaseUser | None = None,
) -> PromptTemplateVersion:
    """Save a template's text as a new immutable version and make it the active one.

    An unchanged text returns the current version instead of adding a copy.
    """
    if not body.strip():
        raise InputError("body", "the template is empty")
    placeholders = template_placeholders(body, field_name="body")
    template_placeholders(negative_prompt, field_name="negative_prompt")
    template, created = PromptTemplate.objects.get_or_create(
        name=name, defaults={"description": description, "created_by": user}
    )
    if description and template.description != description:
        PromptTemplate.objects.filter(pk=template.pk).update(description=description)
        template.description = description
        _record(user, template, "Changed description")
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
        _record(user, template, f"Added v{version.version}", added=created)
    _activate(version, user=user)
    return version
