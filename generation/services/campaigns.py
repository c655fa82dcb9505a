"""Campaigns: planning and submitting one, its items' seeds, grouping items into generation
jobs, regenerating a rejected item and noticing when a campaign is done."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.models import (
    Backend,
    Campaign,
    CampaignRecipe,
    Item,
    Priority,
    PromptTemplateVersion,
    Purpose,
    Recipe,
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
from generation.services.registry import _check_size
from generation.sizes import channel_size, generation_size

SUPPORTED_BACKENDS = set(Backend.values)
PURPOSE_COLUMN = "purpose"


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
