"""Campaigns: planning one (every input validated, nothing written), submitting it (the
campaign and all its items in one transaction) and regenerating a rejected item."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.batching import derive_seed
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
    ParsedCsv,
    check_rows_fit_template,
    parse_csv,
    render,
    template_placeholders,
)
from generation.services.budgets import budget_amount_check, campaign_budget_confirm
from generation.services.dispatch import items_dispatch
from generation.services.status import campaign_reopen, items_announce
from generation.sizes import channel_size, check_size, generation_size, platform_channel
from studio.errors import FieldError, InputError

PURPOSE_COLUMN = "purpose"


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
    # recipe pk -> the campaign's outputs (what a row without a platform is made in)
    outputs: dict[int, list[Output]] = field(default_factory=dict)
    # The campaign's channels, then those only rows' platforms name, in order of first use.
    channels: list[str] = field(default_factory=list)
    row_outputs: list[list[Output]] = field(default_factory=list)  # per row, in order

    @property
    def item_count(self) -> int:
        return sum(len(outputs) for outputs in self.row_outputs) * self.variations

    def sizes(self) -> list[str]:
        """Rows per delivery size, in words: ``["instagram 1080×1080: 3 rows", ...]``."""
        rows: dict[str, int] = {}
        for outputs in self.row_outputs:
            for output in outputs:
                width, height = output.target or output.size
                label = f"{width}×{height}"
                if output.channel and output.channel != f"{width}x{height}":
                    label = f"{output.channel} {label}"
                rows[label] = rows.get(label, 0) + 1
        return [f"{label}: {n} row{'' if n == 1 else 's'}" for label, n in rows.items()]

    def prompts(self, limit: int | None = None) -> list[str]:
        rows = self.parsed.rows if limit is None else self.parsed.rows[:limit]
        return [render(self.template_version.body, row) for row in rows]


PLATFORM_COLUMN = "platform"


def _channel_output(recipe: Recipe, channel: str) -> Output:
    target = channel_size(channel)
    size = generation_size(
        *target,
        native_width=recipe.width,
        native_height=recipe.height,
        backend=recipe.base_model.backend,
    )
    return Output(channel.strip().lower(), target, size)


def _outputs(
    recipe: Recipe, channels: list[str], width: int | None, height: int | None
) -> list[Output]:
    if not channels:
        size = (width or recipe.width, height or recipe.height)
        check_size(*size, field="size")
        return [Output("", None, size)]
    return [_channel_output(recipe, channel) for channel in channels]


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

    A row may name its channel in an optional ``platform`` column (a channel, an alias such
    as "IG" or "Tik Tok", or ``WIDTHxHEIGHT``). The campaign's ``channels`` are made for every
    row, and a row's platform adds its own channel when it is not one of them; a row with a
    platform and a campaign without channels makes only the platform's size, a row without a
    platform the campaign's channels or, with none, its width and height. So choosing
    channels never drops a row's platform, and an empty platform cell means "the campaign's
    sizes". An unknown platform, or one the row's recipe cannot generate, is a row error.
    """
    if not 1 <= variations <= settings.STUDIO_MAX_VARIATIONS:
        raise InputError(
            "variations",
            f"must be between 1 and {settings.STUDIO_MAX_VARIATIONS}, got {variations}",
        )
    by_purpose = {recipe.purpose: recipe}
    for purpose, extra in (recipes or {}).items():
        if purpose not in Purpose.values:
            raise InputError("recipes", f"{purpose!r} is not one of {', '.join(Purpose.values)}")
        by_purpose[purpose] = extra
    channels = [c.strip().lower() for c in channels or [] if c.strip()]
    if len(set(channels)) != len(channels):
        raise InputError("channels", "a channel is listed twice")
    if channels and (width or height):
        raise InputError("size", "give either channels or a width and height, not both")
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
                FieldError(
                    "csv",
                    f"row {number}, column 'purpose': {purpose!r} has no recipe in this "
                    f"campaign (it has: {known})",
                )
            )
        row_purposes.append(purpose)
    if errors:
        raise InputError(errors)

    platforms: list[str] = []
    row_outputs: list[list[Output]] = []
    rows = zip(parsed.rows, row_purposes, strict=True)
    for number, (row, purpose) in enumerate(rows, start=1):
        chosen = by_purpose[purpose]
        platform = (row.get(PLATFORM_COLUMN) or "").strip()
        where = f"row {number}, column 'platform'"
        try:
            channel = platform_channel(platform) if platform else ""
        except InputError as exc:
            errors += [FieldError("csv", f"{where}: {e.message}") for e in exc.errors]
            continue
        try:
            extra = _channel_output(chosen, channel) if channel not in ("", *channels) else None
        except InputError as exc:
            errors += [
                FieldError("csv", f"{where}: {chosen} cannot make {channel} ({e.message})")
                for e in exc.errors
            ]
            continue
        if extra is None:
            row_outputs.append(outputs[chosen.pk])
        else:
            row_outputs.append([*(outputs[chosen.pk] if channels else []), extra])
            if channel not in platforms:
                platforms.append(channel)
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
        channels=channels + platforms,
        row_outputs=row_outputs,
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
    recipes: dict[str, Recipe] | None = None,
    channels: list[str] | None = None,
    priority: str = Priority.NORMAL,
    budget_cap=None,
    budget_confirmed: bool = False,
) -> Campaign:
    """Validate everything, then create the campaign and all items and enqueue them at commit.

    The quality policy is review's: studio.launch.campaign_launch creates both together.

    ``budget_cap`` caps what the campaign may spend. When its estimate is over that cap or
    over what is left of this month's budget, it is created only with ``budget_confirmed``
    (InputError "budget" otherwise).

    Raises InputError naming the field, row and column; on error nothing is written.
    """
    name = (name or "").strip()
    if not name:
        raise InputError("name", "a campaign needs a name")
    if seed_policy not in SeedPolicy.values:
        raise InputError("seed_policy", f"must be one of {', '.join(SeedPolicy.values)}")
    if priority not in Priority.values:
        raise InputError("priority", f"must be one of {', '.join(Priority.values)}")
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
    if budget_cap is not None and budget_cap != "":
        budget_cap = budget_amount_check(budget_cap, field="budget_cap")
    else:
        budget_cap = None
    campaign_budget_confirm(plan=plan, cap=budget_cap, confirmed=budget_confirmed)
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
            budget_cap=budget_cap,
        )
        CampaignRecipe.objects.bulk_create(
            CampaignRecipe(campaign=campaign, purpose=purpose, recipe=chosen)
            for purpose, chosen in plan.recipes.items()
        )
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
                for output in plan.row_outputs[row_index]:
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
        items_dispatch(items, priority=priority)
        Item.objects.bulk_create(items, batch_size=1000)
        items_announce(item_ids=[item.pk for item in items])
    return campaign


def item_regenerate(*, item: Item, seed: int | None = None) -> Item:
    """A new item from a rejected one: same prompt, recipe and pinned versions, a new seed.

    The new item is linked to the old one and enqueued after commit; its campaign runs again.
    """
    if item.status != Item.Status.REJECTED:
        raise InputError(
            "item", f"only a rejected image can be regenerated (this one is {item.status})"
        )
    if item.campaign.status == Campaign.Status.CANCELLED:
        raise InputError("item", "its campaign was cancelled")
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
            params=item.params,  # the pinned inputs; ``run`` (the old run's facts) starts empty
            base_model_id=item.base_model_id,
            loras=item.loras,
            regenerated_from=item,
            queued_at=timezone.now(),
        )
        items_dispatch([new], priority=item.campaign.priority)
        new.save()
        items_announce(item_ids=[new.pk])
        campaign_reopen(campaign_id=item.campaign_id)
    return new
