"""Writes for the registry, campaigns and items (generation app)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max, Model
from django.utils import timezone

from generation.hashing import sha256_path
from generation.models import (
    Backend,
    BaseModelVersion,
    Campaign,
    CampaignRecipe,
    Item,
    LoraVersion,
    Priority,
    PromptTemplate,
    PromptTemplateVersion,
    Purpose,
    Recipe,
    RecipeLora,
    SeedPolicy,
)
from generation.prompts import (
    InputError,
    ParsedCsv,
    check_rows_fit_template,
    parse_csv,
    render,
    template_placeholders,
)
from generation.sizes import channel_size, generation_size

logger = logging.getLogger(__name__)

SUPPORTED_BACKENDS = set(Backend.values)
MIN_SIDE, MAX_SIDE = 64, 2048
PURPOSE_COLUMN = "purpose"


# --- Registry -----------------------------------------------------------------------------


def _next_version(model: type[Model], **lookup) -> int:
    return (model.objects.filter(**lookup).aggregate(v=Max("version"))["v"] or 0) + 1


def _activate(obj: Model, **same_name) -> None:
    type(obj).objects.filter(**same_name, is_active=True).exclude(pk=obj.pk).update(is_active=False)
    type(obj).objects.filter(pk=obj.pk).update(is_active=True)
    obj.is_active = True


def _local_hash(source: str) -> str:
    path = Path(source).expanduser()
    return sha256_path(path) if path.exists() else ""


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


# --- Campaigns ----------------------------------------------------------------------------


def _check_size(width: int, height: int, *, field: str) -> None:
    for label, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InputError(f"{field}: {label} {value} is outside {MIN_SIDE}-{MAX_SIDE} px")
        if value % 8:
            raise InputError(f"{field}: {label} {value} is not a multiple of 8")


def derive_seed(base_seed: int, row_index: int, variation: int) -> int:
    digest = hashlib.sha256(f"{base_seed}:{row_index}:{variation}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Output:
    """One size a row is made in: the channel, the size delivery wants, the size generated."""

    channel: str
    target: tuple[int, int] | None
    size: tuple[int, int]


@dataclass
class CampaignPlan:
    """Everything campaign_submit will create, computed before any write."""

    template_version: PromptTemplateVersion
    recipe: Recipe
    parsed: ParsedCsv
    variations: int
    width: int
    height: int
    recipes: dict[str, Recipe] = field(default_factory=dict)  # purpose -> recipe
    row_purposes: list[str] = field(default_factory=list)
    outputs: dict[int, list[Output]] = field(default_factory=dict)  # recipe pk -> outputs
    channels: list[str] = field(default_factory=list)

    @property
    def item_count(self) -> int:
        return (
            sum(len(self.outputs[self.recipes[purpose].pk]) for purpose in self.row_purposes)
            * self.variations
        )

    def prompts(self, limit: int | None = None) -> list[str]:
        rows = self.parsed.rows if limit is None else self.parsed.rows[:limit]
        return [render(self.template_version.body, row) for row in rows]


def _outputs(
    recipe: Recipe, channels: list[str], width: int | None, height: int | None
) -> list[Output]:
    backend = recipe.base_model.backend
    if not channels:
        size = (width or recipe.width, height or recipe.height)
        _check_size(*size, field="size")
        return [Output("", None, size)]
    outputs = []
    for channel in channels:
        target = channel_size(channel)
        size = generation_size(
            *target, native_width=recipe.width, native_height=recipe.height, backend=backend
        )
        outputs.append(Output(channel.strip().lower(), target, size))
    return outputs


def campaign_plan(
    *,
    template_version: PromptTemplateVersion,
    recipe: Recipe,
    csv_bytes: bytes,
    variations: int = 1,
    width: int | None = None,
    height: int | None = None,
    recipes: dict[str, Recipe] | None = None,
    channels: list[str] | None = None,
) -> CampaignPlan:
    """Validate a campaign's whole input (raises InputError); creates nothing.

    ``recipe`` serves its own purpose and rows without one; ``recipes`` adds a recipe per
    purpose, which rows choose in an optional ``purpose`` CSV column. ``channels`` (names or
    ``WIDTHxHEIGHT``) make one item per channel, each generated at the nearest size the
    recipe's model supports.
    """
    if not 1 <= variations <= settings.STUDIO_MAX_VARIATIONS:
        raise InputError(
            f"variations: must be between 1 and {settings.STUDIO_MAX_VARIATIONS}, got {variations}"
        )
    by_purpose = {recipe.purpose: recipe}
    for purpose, extra in (recipes or {}).items():
        if purpose not in Purpose.values:
            raise InputError(f"recipes: {purpose!r} is not one of {', '.join(Purpose.values)}")
        by_purpose[purpose] = extra
    for chosen in by_purpose.values():
        if chosen.base_model.backend not in SUPPORTED_BACKENDS:
            raise InputError(
                f"recipe: {chosen} uses the {chosen.base_model.backend} backend, which this "
                "installation cannot run"
            )
    channels = [c.strip().lower() for c in channels or [] if c.strip()]
    if len(set(channels)) != len(channels):
        raise InputError("channels: a channel is listed twice")
    if channels and (width or height):
        raise InputError("size: give either channels or a width and height, not both")
    outputs = {r.pk: _outputs(r, channels, width, height) for r in by_purpose.values()}
    parsed = parse_csv(csv_bytes, max_rows=settings.STUDIO_MAX_CSV_ROWS)
    placeholders = template_placeholders(template_version.body, field_name="template")
    placeholders += [
        name
        for name in template_placeholders(template_version.negative_prompt, field_name="template")
        if name not in placeholders
    ]
    check_rows_fit_template(parsed, placeholders)
    row_purposes, errors = [], []
    for number, row in enumerate(parsed.rows, start=1):
        purpose = (row.get(PURPOSE_COLUMN) or "").strip().lower() or recipe.purpose
        if purpose not in by_purpose:
            known = ", ".join(sorted(by_purpose))
            errors.append(
                f"csv: row {number}, column 'purpose': {purpose!r} has no recipe in this "
                f"campaign (it has: {known})"
            )
        row_purposes.append(purpose)
    if errors:
        raise InputError(errors)
    main = outputs[recipe.pk][0].size
    return CampaignPlan(
        template_version,
        recipe,
        parsed,
        variations,
        main[0],
        main[1],
        recipes=by_purpose,
        row_purposes=row_purposes,
        outputs=outputs,
        channels=channels,
    )


def _pinned_loras(recipe: Recipe) -> list[dict]:
    return [
        {
            "id": rl.lora_id,
            "name": rl.lora.name,
            "version": rl.lora.version,
            "file": rl.lora.file,
            "sha256": rl.lora.sha256,
            "weight": rl.weight,
        }
        for rl in recipe.loras.select_related("lora")
    ]


def _recipe_params(recipe: Recipe, size: tuple[int, int]) -> dict:
    return {
        "steps": recipe.steps,
        "guidance_scale": recipe.guidance_scale,
        "width": size[0],
        "height": size[1],
        "scheduler": recipe.scheduler,
        "recipe": f"{recipe.name}:{recipe.version}",
        "purpose": recipe.purpose,
        "backend": recipe.base_model.backend,
    }


def campaign_submit(
    *,
    name: str,
    template_version: PromptTemplateVersion,
    recipe: Recipe,
    csv_bytes: bytes,
    csv_filename: str = "",
    variations: int = 1,
    user=None,
    seed_policy: str = SeedPolicy.FIXED,
    base_seed: int | None = None,
    width: int | None = None,
    height: int | None = None,
    approve_at: float | None = None,
    reject_below: float | None = None,
    recipes: dict[str, Recipe] | None = None,
    channels: list[str] | None = None,
    priority: str = Priority.NORMAL,
) -> Campaign:
    """Validate everything, then create the campaign and all items and enqueue them at commit.

    Raises InputError naming the field, row and column; on error nothing is written.
    """
    from review.services import quality_policy_create

    name = (name or "").strip()
    if not name:
        raise InputError("name: a campaign needs a name")
    if seed_policy not in SeedPolicy.values:
        raise InputError(f"seed_policy: must be one of {', '.join(SeedPolicy.values)}")
    if priority not in Priority.values:
        raise InputError(f"priority: must be one of {', '.join(Priority.values)}")
    plan = campaign_plan(
        template_version=template_version,
        recipe=recipe,
        csv_bytes=csv_bytes,
        variations=variations,
        width=width,
        height=height,
        recipes=recipes,
        channels=channels,
    )
    if base_seed is None:
        base_seed = secrets.randbelow(2**31)
    loras = {r.pk: _pinned_loras(r) for r in plan.recipes.values()}
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            template_version=template_version,
            recipe=recipe,
            csv_filename=csv_filename,
            csv_columns=plan.parsed.columns,
            csv_rows=plan.parsed.rows,
            variations=variations,
            seed_policy=seed_policy,
            base_seed=base_seed,
            width=plan.width,
            height=plan.height,
            channels=plan.channels,
            priority=priority,
            created_by=user,
        )
        CampaignRecipe.objects.bulk_create(
            CampaignRecipe(campaign=campaign, purpose=purpose, recipe=chosen)
            for purpose, chosen in plan.recipes.items()
        )
        quality_policy_create(campaign=campaign, approve_at=approve_at, reject_below=reject_below)
        items = []
        rows = zip(plan.parsed.rows, plan.prompts(), plan.row_purposes, strict=True)
        for row_index, (row, prompt, purpose) in enumerate(rows):
            chosen = plan.recipes[purpose]
            negative = render(template_version.negative_prompt, row)
            for variation in range(variations):
                # Every channel of a variation shares its seed: the same picture, reframed.
                if chosen.base_model.backend == Backend.AUTOMATIC1111:
                    # AUTOMATIC1111 gives image i of a batch seed + i: consecutive seeds let
                    # a row's variations share one call.
                    if variation == 0:
                        first = (
                            derive_seed(base_seed, row_index, 0)
                            if seed_policy == SeedPolicy.FIXED
                            else secrets.randbelow(2**32)
                        )
                    seed = first + variation
                else:
                    seed = (
                        derive_seed(base_seed, row_index, variation)
                        if seed_policy == SeedPolicy.FIXED
                        else secrets.randbelow(2**32)
                    )
                for output in plan.outputs[chosen.pk]:
                    items.append(
                        Item(
                            campaign=campaign,
                            row_index=row_index,
                            variation=variation,
                            channel=output.channel,
                            target_width=output.target[0] if output.target else None,
                            target_height=output.target[1] if output.target else None,
                            purpose=purpose,
                            recipe=chosen,
                            row_data=row,
                            prompt=prompt,
                            negative_prompt=negative,
                            seed=seed,
                            params=_recipe_params(chosen, output.size),
                            base_model=chosen.base_model,
                            loras=loras[chosen.pk],
                            queued_at=now,
                        )
                    )
        _assign_jobs(items, priority=priority)
        Item.objects.bulk_create(items, batch_size=1000)
    return campaign


def batch_size_for(backend: str) -> int:
    """Images per pipeline call on a backend (GPU memory, the server's own limits)."""
    if backend == Backend.STABILITY:
        return 1
    if backend == Backend.AUTOMATIC1111:
        return settings.STUDIO_BATCH_SIZE_A1111
    return settings.STUDIO_BATCH_SIZE_DIFFUSERS


def _batch_key(item: Item) -> str:
    """Items with the same key can share one pipeline call."""
    return json.dumps([item.base_model_id, item.loras, item.params], sort_keys=True)


def _assign_jobs(items: list[Item], *, priority: str = Priority.NORMAL) -> None:
    """Group items into batches (one RQ job each) and enqueue them when the transaction commits.

    A batch holds items that share recipe and size, up to the backend's batch size, so it is
    one pipeline call. Hero items and high-priority campaigns go to the front of the queue.
    """
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(_batch_key(item), []).append(item)
    batches: list[tuple[str, list[str], bool]] = []
    for group in groups.values():
        size = batch_size_for(group[0].params.get("backend", Backend.DIFFUSERS))
        front = priority == Priority.HIGH or group[0].purpose == Purpose.HERO
        for start in range(0, len(group), size):
            job_id = f"generate-{uuid.uuid4()}"
            batch = group[start : start + size]
            for item in batch:
                item.job_id = job_id
            batches.append((job_id, [str(item.pk) for item in batch], front))
    # Front jobs are pushed one by one to the head, so push them in reverse to keep order.
    ordered = [b for b in batches if not b[2]] + [b for b in reversed(batches) if b[2]]
    transaction.on_commit(
        lambda: [enqueue_generation(ids, job_id=j, at_front=front) for j, ids, front in ordered]
    )


def item_regenerate(*, item: Item, seed: int | None = None) -> Item:
    """A new item from a rejected one: same prompt, recipe and pinned versions, a new seed.

    The new item is linked to the old one and enqueued after commit; its campaign runs again.
    """
    if item.status != Item.Status.REJECTED:
        raise InputError(
            f"item: only a rejected image can be regenerated (this one is {item.status})"
        )
    if item.campaign.status == Campaign.Status.CANCELLED:
        raise InputError("item: its campaign was cancelled")
    with transaction.atomic():
        new = Item(
            campaign_id=item.campaign_id,
            row_index=item.row_index,
            variation=item.variation,
            channel=item.channel,
            target_width=item.target_width,
            target_height=item.target_height,
            purpose=item.purpose,
            recipe_id=item.recipe_id,
            row_data=item.row_data,
            prompt=item.prompt,
            negative_prompt=item.negative_prompt,
            seed=secrets.randbelow(2**32) if seed is None else seed,
            params={k: v for k, v in item.params.items() if k not in ("batch_size", "provider")},
            base_model_id=item.base_model_id,
            loras=item.loras,
            regenerated_from=item,
            queued_at=timezone.now(),
        )
        _assign_jobs([new], priority=item.campaign.priority)
        new.save()
        Campaign.objects.filter(pk=item.campaign_id, status=Campaign.Status.COMPLETED).update(
            status=Campaign.Status.RUNNING, finished_at=None
        )
    return new


def enqueue_generation(item_ids: list[str], *, job_id: str, at_front: bool = False) -> None:
    import django_rq
    from rq import Retry

    from generation.jobs import generate_items

    django_rq.get_queue("generation").enqueue(
        generate_items,
        item_ids,
        job_id=job_id,
        job_timeout=settings.JOB_TIMEOUT_GENERATION,
        retry=Retry(max=2, interval=[10, 60]),
        failure_ttl=7 * 24 * 3600,
        at_front=at_front,
    )


def campaign_update_status(*, campaign_id) -> None:
    """Mark a campaign completed once every item reached a final status."""
    open_items = Item.objects.filter(campaign_id=campaign_id).exclude(
        status__in=Item.FINAL_STATUSES
    )
    if not open_items.exists():
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).update(
            status=Campaign.Status.COMPLETED, finished_at=timezone.now()
        )


# --- Generation ---------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(item_ids: list[str]) -> list[Item]:
    """Claim queued items of running campaigns (conditional update): a second run of the same
    job claims nothing, and items of a paused or cancelled campaign are left alone."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Item.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk__in=item_ids,
                status=Item.Status.QUEUED,
                campaign__status=Campaign.Status.RUNNING,
            )
            .values_list("pk", flat=True)
        )
        Item.objects.filter(pk__in=ids).update(
            status=Item.Status.RUNNING,
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=settings.STUDIO_ITEM_LEASE_SECONDS),
            worker=_worker_name(),
            worker_host=socket.gethostname(),
            started_at=now,
            error="",
        )
    return list(Item.objects.filter(pk__in=ids).select_related("base_model", "campaign"))


def png_with_metadata(image, item: Item) -> bytes:
    """PNG bytes with the prompt and every parameter in text chunks (A1111-style + JSON)."""
    from PIL.PngImagePlugin import PngInfo

    params = item.params
    info = PngInfo()
    loras = " ".join(f"<lora:{lora['name']}:{lora['weight']}>" for lora in item.loras)
    info.add_text(
        "parameters",
        f"{item.prompt} {loras}".strip() + f"\nNegative prompt: {item.negative_prompt}\n"
        f"Steps: {params.get('steps')}, CFG scale: {params.get('guidance_scale')}, "
        f"Seed: {item.seed}, Size: {params.get('width')}x{params.get('height')}, "
        f"Model: {item.base_model.name}, Model hash: {item.base_model.sha256[:10]}",
    )
    info.add_text("studio", json.dumps(item_provenance(item), sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def item_provenance(item: Item) -> dict:
    return {
        "item": str(item.pk),
        "campaign": str(item.campaign_id),
        "prompt": item.prompt,
        "negative_prompt": item.negative_prompt,
        "seed": item.seed,
        "params": item.params,
        "channel": item.channel,
        "target_size": [item.target_width, item.target_height] if item.target_width else None,
        "base_model": {
            "name": item.base_model.name,
            "version": item.base_model.version,
            "source": item.base_model.source,
            "sha256": item.base_model.sha256,
            "backend": item.base_model.backend,
        },
        "loras": item.loras,
        "row": item.row_data,
    }


def item_cost(*, item: Item, result) -> tuple[Decimal, dict]:
    """What one image cost and how: GPU-seconds × STUDIO_GPU_HOURLY_RATE (diffusers),
    STUDIO_A1111_IMAGE_RATE per image (AUTOMATIC1111), credits × STUDIO_STABILITY_CREDIT_PRICE
    (Stability); plus the base model's own per-image fee, if any."""
    backend = item.base_model.backend
    if backend == Backend.STABILITY:
        credits = Decimal(str(result.credits or 0))
        price = settings.STUDIO_STABILITY_CREDIT_PRICE
        cost = credits * price
        detail = {"basis": "credits", "credits": float(credits), "credit_price": str(price)}
    elif backend == Backend.AUTOMATIC1111:
        cost = settings.STUDIO_A1111_IMAGE_RATE
        detail = {"basis": "per_image", "image_rate": str(cost)}
    else:
        rate = settings.STUDIO_GPU_HOURLY_RATE
        cost = Decimal(str(result.duration_s)) * rate / Decimal(3600)
        detail = {
            "basis": "gpu_seconds",
            "seconds": round(result.duration_s, 4),
            "hourly_rate": str(rate),
            "device": result.device,
        }
    fee = item.base_model.cost_per_image
    if fee:
        detail["model_fee"] = str(fee)
    return (cost + fee).quantize(Decimal("0.000001")), detail


def _fail_or_requeue(items: list[Item], message: str, *, retryable: bool) -> bool:
    """Returns True when at least one item will be tried again."""
    again = False
    now = timezone.now()
    for item in items:
        final = not retryable or item.attempts >= settings.STUDIO_MAX_ATTEMPTS
        Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.FAILED if final else Item.Status.QUEUED,
            error=message[:4000],
            lease_until=None,
            queued_at=None if final else now,
            finished_at=now if final else None,
        )
        again = again or not final
    for campaign_id in {item.campaign_id for item in items}:
        campaign_update_status(campaign_id=campaign_id)
    return again


def model_spec(base_model: BaseModelVersion):
    from generation.backends import ModelSpec

    return ModelSpec(
        key=f"{base_model.name}:{base_model.version}",
        source=base_model.source,
        sha256=base_model.sha256,
    )


def lora_specs(pinned: list[dict]) -> list:
    from generation.backends import LoraSpec

    return [
        LoraSpec(
            name=f"{lora['name']}:{lora['version']}",
            path=lora["file"],
            weight=lora["weight"],
            sha256=lora["sha256"],
        )
        for lora in pinned
    ]


def image_request(item: Item):
    from generation.backends import ImageRequest

    return ImageRequest(
        prompt=item.prompt,
        negative_prompt=item.negative_prompt,
        seed=item.seed,
        width=item.params["width"],
        height=item.params["height"],
        steps=item.params["steps"],
        guidance_scale=item.params["guidance_scale"],
        scheduler=item.params.get("scheduler", ""),
    )


def items_generate(*, item_ids: list[str]) -> int:
    """Generate the claimed items, one backend call per batch; returns how many images were made.

    Items that share base model, LoRAs and parameters (recipe and size) run together, up to
    the backend's batch size. A retryable backend error puts a batch back to queued (until
    STUDIO_MAX_ATTEMPTS) and, once the other batches are done, re-raises so RQ's Retry runs
    the job again; a permanent one fails the batch's items with the provider's message.
    """
    items = _claim(item_ids)
    if not items:
        return 0
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(_batch_key(item), []).append(item)
    made, retry = 0, None
    for group in groups.values():
        size = batch_size_for(group[0].base_model.backend)
        for start in range(0, len(group), size):
            count, error = _generate_batch(group[start : start + size])
            made += count
            retry = retry or error
    if retry is not None:
        raise retry
    return made


def _generate_batch(batch: list[Item]) -> tuple[int, Exception | None]:
    from generation.backends import BackendError, get_backend

    head = batch[0]
    try:
        backend = get_backend(head.base_model.backend)
        started = time.monotonic()
        results = backend.generate(
            model_spec(head.base_model), lora_specs(head.loras), [image_request(i) for i in batch]
        )
        logger.info("generated %d images in %.2fs", len(results), time.monotonic() - started)
    except BackendError as exc:
        again = _fail_or_requeue(batch, str(exc), retryable=exc.retryable)
        return 0, exc if again else None
    except Exception as exc:
        logger.exception("generation failed")
        again = _fail_or_requeue(batch, f"{type(exc).__name__}: {exc}", retryable=True)
        return 0, exc if again else None
    made = 0
    for item, result in zip(batch, results, strict=True):
        if result.image is None:
            _fail_filtered(item, result)
        else:
            _store_generated(item, result)
            made += 1
    return made, None


def _timing(item: Item, result) -> dict:
    queued_from = item.queued_at or item.created_at
    return {
        "duration_s": result.duration_s,
        "queued_s": max(0.0, (item.started_at - queued_from).total_seconds())
        if item.started_at
        else None,
    }


def _fail_filtered(item: Item, result) -> None:
    """The provider refused this one image (content filter): final, with its reason and cost."""
    cost, detail = item_cost(item=item, result=result)
    Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
        status=Item.Status.FAILED,
        error=result.error[:4000],
        cost=cost,
        cost_detail=detail,
        params=item.params | {"provider": result.extra} if result.extra else item.params,
        lease_until=None,
        finished_at=timezone.now(),
        **_timing(item, result),
    )
    campaign_update_status(campaign_id=item.campaign_id)


def _store_generated(item: Item, result) -> None:
    from review.services import enqueue_scoring

    data = png_with_metadata(result.image, item)
    name = default_storage.save(f"items/{item.campaign_id}/{item.pk}.png", ContentFile(data))
    cost, detail = item_cost(item=item, result=result)
    # Exact pixels depend on the batch size (kernel choice), so reproduction needs it.
    params = item.params | {"batch_size": result.batch_size}
    if result.extra:
        params["provider"] = result.extra
    with transaction.atomic():
        updated = Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.SCORING,
            image=name,
            params=params,
            cost=cost,
            cost_detail=detail,
            worker=f"{_worker_name()} ({result.device})",
            generated_at=timezone.now(),
            lease_until=None,
            **_timing(item, result),
        )
        if updated:
            transaction.on_commit(lambda: enqueue_scoring(item.pk))
        else:
            # The lease expired and the reconciler handed the item on: drop our copy.
            transaction.on_commit(lambda: default_storage.delete(name))


def _enqueue_again(items: list[Item]) -> None:
    """New jobs for queued items (resume, retry, reconcile); call inside a transaction."""
    by_priority: dict[str, list[Item]] = {}
    for item in items:
        by_priority.setdefault(item.campaign.priority, []).append(item)
    for priority, group in by_priority.items():
        _assign_jobs(group, priority=priority)
    jobs: dict[str, list] = {}
    for item in items:
        jobs.setdefault(item.job_id, []).append(item.pk)
    for job_id, pks in jobs.items():
        Item.objects.filter(pk__in=pks, status=Item.Status.QUEUED).update(job_id=job_id)


# --- Recovery -----------------------------------------------------------------------------


def items_reconcile() -> dict[str, int]:
    """Re-enqueue work lost with a worker or with Redis, from the database's point of view.

    - running items whose lease expired go back to queued (or fail after the last attempt);
    - queued items whose RQ job no longer exists (or failed for good) get a new job;
    - items stuck in scoring, and approved items without an asset, are enqueued again
      (those jobs are idempotent).
    """
    import django_rq
    from rq.job import Job, JobStatus

    from catalogue.services import enqueue_publish
    from review.services import enqueue_scoring

    now = timezone.now()
    counts = {"expired": 0, "requeued": 0, "rescored": 0, "republished": 0}
    expired = list(
        Item.objects.filter(status=Item.Status.RUNNING, lease_until__lt=now).select_related(
            "base_model", "campaign"
        )
    )
    if expired:
        _fail_or_requeue(expired, "the worker's lease expired", retryable=True)
        counts["expired"] = len(expired)

    connection = django_rq.get_connection("generation")
    grace = now - timedelta(seconds=60)
    # Items of paused campaigns wait for campaign_resume, which enqueues them itself.
    queued = list(
        Item.objects.filter(
            status=Item.Status.QUEUED,
            created_at__lt=grace,
            campaign__status=Campaign.Status.RUNNING,
        ).values_list("pk", "job_id")
    )
    job_ids = sorted({job_id for _, job_id in queued if job_id})
    alive: set[str] = set()
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        for job_id, job in zip(chunk, Job.fetch_many(chunk, connection=connection), strict=True):
            if job is not None and job.get_status(refresh=False) in {
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.SCHEDULED,
                JobStatus.DEFERRED,
            }:
                alive.add(job_id)
    lost = [str(pk) for pk, job_id in queued if job_id not in alive]
    with transaction.atomic():
        _enqueue_again(list(Item.objects.filter(pk__in=lost).select_related("campaign")))
    counts["requeued"] = len(lost)

    stale = now - timedelta(seconds=2 * settings.JOB_TIMEOUT_QUALITY)
    for pk in Item.objects.filter(status=Item.Status.SCORING, generated_at__lt=stale).values_list(
        "pk", flat=True
    ):
        enqueue_scoring(pk)
        counts["rescored"] += 1
    for pk in Item.objects.filter(
        status=Item.Status.APPROVED, asset__isnull=True, finished_at__lt=stale
    ).values_list("pk", flat=True):
        enqueue_publish(pk)
        counts["republished"] += 1
    return counts


from generation.services.control import (  # noqa: E402  (a submodule of this package)
    ACTIONS,
    Reproduction,
    campaign_cancel,
    campaign_control,
    campaign_pause,
    campaign_resume,
    campaign_retry_failed,
    campaign_set_priority,
    item_reproduce,
)

__all__ = [
    "ACTIONS",
    "Reproduction",
    "campaign_cancel",
    "campaign_control",
    "campaign_pause",
    "campaign_resume",
    "campaign_retry_failed",
    "campaign_set_priority",
    "item_reproduce",
]
