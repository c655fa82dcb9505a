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
from dataclasses import dataclass
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
    Item,
    LoraVersion,
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

logger = logging.getLogger(__name__)

SUPPORTED_BACKENDS = {Backend.DIFFUSERS}
MIN_SIDE, MAX_SIDE = 64, 2048


# --- Registry -----------------------------------------------------------------------------


def _next_version(model: type[Model], **lookup) -> int:
    return (model.objects.filter(**lookup).aggregate(v=Max("version"))["v"] or 0) + 1


def _activate(obj: Model, **same_name) -> None:
    type(obj).objects.filter(**same_name, is_active=True).exclude(pk=obj.pk).update(
        is_active=False
    )
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
) -> BaseModelVersion:
    """Register a base model version; a local source is hashed now and checked at each load.

    Registering the same source with the same content again returns the existing version.
    """
    if backend not in Backend.values:
        raise InputError(f"backend: {backend!r} is not one of {', '.join(Backend.values)}")
    digest = _local_hash(source) if backend == Backend.DIFFUSERS else ""
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
    if latest and all(getattr(latest, k) == v for k, v in wanted.items()) and [
        (rl.lora_id, rl.weight) for rl in latest.loras.all()
    ] == wanted_loras:
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


@dataclass
class CampaignPlan:
    """Everything campaign_submit will create, computed before any write."""

    template_version: PromptTemplateVersion
    recipe: Recipe
    parsed: ParsedCsv
    variations: int
    width: int
    height: int

    @property
    def item_count(self) -> int:
        return len(self.parsed.rows) * self.variations

    def prompts(self, limit: int | None = None) -> list[str]:
        rows = self.parsed.rows if limit is None else self.parsed.rows[:limit]
        return [render(self.template_version.body, row) for row in rows]


def campaign_plan(
    *,
    template_version: PromptTemplateVersion,
    recipe: Recipe,
    csv_bytes: bytes,
    variations: int = 1,
    width: int | None = None,
    height: int | None = None,
) -> CampaignPlan:
    """Validate a campaign's whole input (raises InputError); creates nothing."""
    if not 1 <= variations <= settings.STUDIO_MAX_VARIATIONS:
        raise InputError(
            f"variations: must be between 1 and {settings.STUDIO_MAX_VARIATIONS}, got {variations}"
        )
    if recipe.base_model.backend not in SUPPORTED_BACKENDS:
        raise InputError(
            f"recipe: {recipe} uses the {recipe.base_model.backend} backend, which this "
            "installation cannot run yet"
        )
    width = width or recipe.width
    height = height or recipe.height
    _check_size(width, height, field="size")
    parsed = parse_csv(csv_bytes, max_rows=settings.STUDIO_MAX_CSV_ROWS)
    placeholders = template_placeholders(template_version.body, field_name="template")
    placeholders += [
        name
        for name in template_placeholders(template_version.negative_prompt, field_name="template")
        if name not in placeholders
    ]
    check_rows_fit_template(parsed, placeholders)
    return CampaignPlan(template_version, recipe, parsed, variations, width, height)


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
    plan = campaign_plan(
        template_version=template_version,
        recipe=recipe,
        csv_bytes=csv_bytes,
        variations=variations,
        width=width,
        height=height,
    )
    if base_seed is None:
        base_seed = secrets.randbelow(2**31)
    params = {
        "steps": recipe.steps,
        "guidance_scale": recipe.guidance_scale,
        "width": plan.width,
        "height": plan.height,
        "scheduler": recipe.scheduler,
        "recipe": f"{recipe.name}:{recipe.version}",
        "purpose": recipe.purpose,
    }
    loras = _pinned_loras(recipe)
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
            created_by=user,
        )
        quality_policy_create(campaign=campaign, approve_at=approve_at, reject_below=reject_below)
        items = []
        for row_index, (row, prompt) in enumerate(zip(plan.parsed.rows, plan.prompts())):
            negative = render(template_version.negative_prompt, row)
            for variation in range(variations):
                seed = (
                    derive_seed(base_seed, row_index, variation)
                    if seed_policy == SeedPolicy.FIXED
                    else secrets.randbelow(2**32)
                )
                items.append(
                    Item(
                        campaign=campaign,
                        row_index=row_index,
                        variation=variation,
                        row_data=row,
                        prompt=prompt,
                        negative_prompt=negative,
                        seed=seed,
                        params=params,
                        base_model=recipe.base_model,
                        loras=loras,
                    )
                )
        _assign_jobs(items)
        Item.objects.bulk_create(items, batch_size=1000)
    return campaign


def _assign_jobs(items: list[Item]) -> None:
    """Group items into batches (one RQ job each) and enqueue them when the transaction commits.

    Items of one campaign share recipe and size, so a batch is one pipeline call.
    """
    size = settings.STUDIO_BATCH_SIZE
    batches: list[tuple[str, list[str]]] = []
    for start in range(0, len(items), size):
        job_id = f"generate-{uuid.uuid4()}"
        batch = items[start : start + size]
        for item in batch:
            item.job_id = job_id
        batches.append((job_id, [str(item.pk) for item in batch]))
    transaction.on_commit(lambda: [enqueue_generation(ids, job_id=j) for j, ids in batches])


def item_regenerate(*, item: Item, seed: int | None = None) -> Item:
    """A new item from a rejected one: same prompt, recipe and pinned versions, a new seed.

    The new item is linked to the old one and enqueued after commit; its campaign runs again.
    """
    if item.status != Item.Status.REJECTED:
        raise InputError(f"item: only a rejected image can be regenerated (this one is {item.status})")
    with transaction.atomic():
        new = Item(
            campaign_id=item.campaign_id,
            row_index=item.row_index,
            variation=item.variation,
            row_data=item.row_data,
            prompt=item.prompt,
            negative_prompt=item.negative_prompt,
            seed=secrets.randbelow(2**32) if seed is None else seed,
            params={k: v for k, v in item.params.items() if k != "batch_size"},
            base_model_id=item.base_model_id,
            loras=item.loras,
            regenerated_from=item,
        )
        _assign_jobs([new])
        new.save()
        Campaign.objects.filter(pk=item.campaign_id).update(
            status=Campaign.Status.RUNNING, finished_at=None
        )
    return new


def enqueue_generation(item_ids: list[str], *, job_id: str) -> None:
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
    """Claim queued items (conditional update): a second run of the same job claims nothing."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Item.objects.select_for_update(skip_locked=True)
            .filter(pk__in=item_ids, status=Item.Status.QUEUED)
            .values_list("pk", flat=True)
        )
        Item.objects.filter(pk__in=ids).update(
            status=Item.Status.RUNNING,
            attempts=F("attempts") + 1,
            lease_until=now + timedelta(seconds=settings.STUDIO_ITEM_LEASE_SECONDS),
            worker=_worker_name(),
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
        f"{item.prompt} {loras}".strip()
        + f"\nNegative prompt: {item.negative_prompt}\n"
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


def _item_cost(item: Item, seconds: float) -> Decimal:
    gpu = Decimal(str(seconds)) * settings.STUDIO_GPU_HOURLY_RATE / Decimal(3600)
    return (item.base_model.cost_per_image + gpu).quantize(Decimal("0.000001"))


def _fail_or_requeue(items: list[Item], message: str, *, retryable: bool) -> bool:
    """Returns True when at least one item will be tried again."""
    again = False
    for item in items:
        final = not retryable or item.attempts >= settings.STUDIO_MAX_ATTEMPTS
        Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.FAILED if final else Item.Status.QUEUED,
            error=message[:4000],
            lease_until=None,
            finished_at=timezone.now() if final else None,
        )
        again = again or not final
    return again


def items_generate(*, item_ids: list[str]) -> int:
    """Generate the claimed items in one pipeline call; returns how many images were made.

    A retryable backend error puts the items back to queued (until STUDIO_MAX_ATTEMPTS) and
    re-raises so RQ's Retry runs the job again; a permanent one fails them with its message.
    """
    from generation.backends import BackendError, ImageRequest, LoraSpec, ModelSpec

    items = _claim(item_ids)
    if not items:
        return 0
    made = 0
    # Items of one job share a campaign (and so base model, LoRAs and parameters), but
    # group anyway so a job built by the reconciler from mixed items stays correct.
    groups: dict[str, list[Item]] = {}
    for item in items:
        key = json.dumps([item.base_model_id, item.loras, item.params], sort_keys=True)
        groups.setdefault(key, []).append(item)
    for group in groups.values():
        head = group[0]
        model = ModelSpec(
            key=f"{head.base_model.name}:{head.base_model.version}",
            source=head.base_model.source,
            sha256=head.base_model.sha256,
        )
        loras = [
            LoraSpec(
                name=f"{lora['name']}:{lora['version']}",
                path=lora["file"],
                weight=lora["weight"],
                sha256=lora["sha256"],
            )
            for lora in head.loras
        ]
        requests = [
            ImageRequest(
                prompt=item.prompt,
                negative_prompt=item.negative_prompt,
                seed=item.seed,
                width=item.params["width"],
                height=item.params["height"],
                steps=item.params["steps"],
                guidance_scale=item.params["guidance_scale"],
                scheduler=item.params.get("scheduler", ""),
            )
            for item in group
        ]
        try:
            from generation.backends import diffusers as backend

            started = time.monotonic()
            results = backend.generate(model, loras, requests)
            logger.info("generated %d images in %.2fs", len(results), time.monotonic() - started)
        except BackendError as exc:
            if _fail_or_requeue(group, str(exc), retryable=exc.retryable):
                raise
            continue
        except Exception as exc:
            if _fail_or_requeue(group, f"{type(exc).__name__}: {exc}", retryable=True):
                raise
            continue
        for item, result in zip(group, results):
            _store_generated(item, result)
            made += 1
    return made


def _store_generated(item: Item, result) -> None:
    from review.services import enqueue_scoring

    data = png_with_metadata(result.image, item)
    name = default_storage.save(
        f"items/{item.campaign_id}/{item.pk}.png", ContentFile(data)
    )
    with transaction.atomic():
        updated = Item.objects.filter(pk=item.pk, status=Item.Status.RUNNING).update(
            status=Item.Status.SCORING,
            image=name,
            duration_s=result.duration_s,
            # Exact pixels depend on the batch size (kernel choice), so reproduction needs it.
            params=item.params | {"batch_size": result.batch_size},
            cost=_item_cost(item, result.duration_s),
            worker=f"{_worker_name()} ({result.device})",
            generated_at=timezone.now(),
            lease_until=None,
        )
        if updated:
            transaction.on_commit(lambda: enqueue_scoring(item.pk))
        else:
            # The lease expired and the reconciler handed the item on: drop our copy.
            transaction.on_commit(lambda: default_storage.delete(name))


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
    queued = list(
        Item.objects.filter(status=Item.Status.QUEUED, created_at__lt=grace).values_list(
            "pk", "job_id"
        )
    )
    job_ids = sorted({job_id for _, job_id in queued if job_id})
    alive: set[str] = set()
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        for job_id, job in zip(chunk, Job.fetch_many(chunk, connection=connection)):
            if job is not None and job.get_status(refresh=False) in {
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.SCHEDULED,
                JobStatus.DEFERRED,
            }:
                alive.add(job_id)
    lost = [str(pk) for pk, job_id in queued if job_id not in alive]
    size = settings.STUDIO_BATCH_SIZE
    for start in range(0, len(lost), size):
        ids = lost[start : start + size]
        job_id = f"generate-{uuid.uuid4()}"
        Item.objects.filter(pk__in=ids, status=Item.Status.QUEUED).update(job_id=job_id)
        enqueue_generation(ids, job_id=job_id)
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
