"""Campaigns: planning one (every input validated, nothing written), submitting it (the
campaign and all its items in one transaction) and regenerating a rejected item."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.batching import derive_seed
from generation.matrix import (
    Matrix,
    axis_value,
    cell_loras,
    cell_params,
    matrix_check,
    matrix_parse,
)
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
from studio.errors import FieldError, InputError, text_problem

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
    matrix: Matrix = field(default_factory=Matrix)
    # A recipe axis: recipe pk -> that recipe's outputs per row (sizes differ by model).
    axis_row_outputs: dict[int, list[list[Output]]] = field(default_factory=dict)

    @property
    def cells_per_row(self) -> int:
        return self.matrix.cell_count

    @property
    def item_count(self) -> int:
        return sum(len(outputs) for outputs in self.row_outputs) * self.matrix.cell_count

    def outputs_for(self, row_index: int, recipe: Recipe) -> list[Output]:
        if recipe.pk in self.axis_row_outputs:
            return self.axis_row_outputs[recipe.pk][row_index]
        return self.row_outputs[row_index]

    def axis_counts(self) -> list[tuple[str, int]]:
        """Images along each axis, for the preview: ``[("rows", 12), ("seeds", 20), …]``."""
        from generation.matrix import AXIS_LABELS

        counts = [("rows", len(self.parsed.rows))]
        counts += [(AXIS_LABELS[a], n) for a, n in self.matrix.axis_sizes().items()]
        outputs = {len(o) for o in self.row_outputs}
        if outputs != {1}:
            counts.append(("output sizes per row", max(outputs, default=0)))
        return counts

    def recipe_images(self) -> list[tuple[Recipe, int, tuple[int, int]]]:
        """(recipe, images, first size) for every recipe the campaign uses (the estimate)."""
        cells: dict[int | None, int] = {}
        for cell in self.matrix.cells():
            key = cell.recipe.pk if cell.recipe else None
            cells[key] = cells.get(key, 0) + 1
        axis = {r.pk: r for r in self.matrix.recipes}
        counts: dict[int, list] = {}
        for row_index, purpose in enumerate(self.row_purposes):
            for key, n in cells.items():
                recipe = axis[key] if key is not None else self.recipes[purpose]
                outputs = self.outputs_for(row_index, recipe)
                known = counts.setdefault(recipe.pk, [recipe, 0, outputs[0].size])
                known[1] += len(outputs) * n
        return [tuple(v) for v in counts.values()]

    def template_for(self, cell) -> PromptTemplateVersion:
        """The template version a cell's prompt is expanded from: the cell's, else the
        campaign's."""
        return cell.template or self.template_version

    def sample(self, limit: int) -> list[dict]:
        """The first ``limit`` images as they will be made: prompt, cell and parameters."""
        out = []
        # Seed 1 of every cell first: the first images show what the matrix varies.
        cells = sorted(self.matrix.cells(), key=lambda cell: cell.seed_index)
        for row_index, row in enumerate(self.parsed.rows):
            for cell in cells:
                prompt = render(self.template_for(cell).body, row)
                recipe = cell.recipe or self.recipes[self.row_purposes[row_index]]
                for output in self.outputs_for(row_index, recipe):
                    params = cell_params(_recipe_params(recipe, output.size), cell)
                    loras = cell_loras(_pinned_loras(recipe), cell, self.matrix.lora_versions)
                    out.append(
                        {
                            "row": row_index + 1,
                            "prompt": prompt,
                            "axes": cell.axes(),
                            "cell": ", ".join(
                                f"{k.replace('_', ' ')} {axis_value(cell.axes(), k)}"
                                for k in cell.axes()
                                if k != "lora_set"
                            ),
                            "params": params,
                            "loras": ", ".join(f"{p['name']} {p['weight']:g}" for p in loras),
                        }
                    )
                    if len(out) >= limit:
                        return out
        return out

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
    matrix: dict | str | None = None,
) -> CampaignPlan:
    """Validate a campaign's whole input (raises InputError); creates nothing.

    ``matrix`` is a variation matrix (generation.matrix): every row makes one image per
    cell and output size. Without a seeds axis a row gets ``variations`` seeds; a recipe axis
    replaces ``recipe`` (and cannot be combined with ``recipes`` by purpose); a template axis
    (versions of one template) replaces ``template_version``, its first version being the
    campaign's, and every version's placeholders must fit the rows.

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
    grid = matrix_parse(matrix, variations=variations)
    if grid.recipes:
        if recipes:
            raise InputError(
                "matrix_recipes",
                "recipes: a recipe axis cannot be combined with recipes by purpose",
            )
        recipe = grid.recipes[0]
    if grid.templates:
        template_version = grid.templates[0]
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
    placeholders: list[str] = []
    for version in grid.templates or [template_version]:
        for text in (version.body, version.negative_prompt):
            placeholders += [
                name
                for name in template_placeholders(text, field_name="template")
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

    row_outputs, platforms, errors = _rows_outputs(
        parsed, [by_purpose[p] for p in row_purposes], outputs, channels
    )
    if errors:
        raise InputError(errors)
    axis_row_outputs = {}
    for extra in grid.recipes[1:]:
        extra_outputs = {extra.pk: _outputs(extra, channels, width, height)}
        axis_row_outputs[extra.pk], _platforms, errors = _rows_outputs(
            parsed, [extra] * len(parsed.rows), extra_outputs, channels
        )
        if errors:
            raise InputError(errors)
    if grid.recipes:
        axis_row_outputs[recipe.pk] = row_outputs
    matrix_check(
        matrix=grid,
        rows=len(parsed.rows),
        outputs=max((len(o) for o in row_outputs), default=1),
    )
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
        matrix=grid,
        axis_row_outputs=axis_row_outputs,
    )


def _rows_outputs(
    parsed: ParsedCsv, row_recipes: list[Recipe], outputs: dict[int, list[Output]], channels
) -> tuple[list[list[Output]], list[str], list[FieldError]]:
    """Each row's outputs under its recipe: the campaign's channels plus its platform's."""
    errors: list[FieldError] = []
    platforms: list[str] = []
    row_outputs: list[list[Output]] = []
    for number, (row, chosen) in enumerate(zip(parsed.rows, row_recipes, strict=True), start=1):
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
    return row_outputs, platforms, errors


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
    matrix: dict | str | None = None,
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
    if len(name) > Campaign._meta.get_field("name").max_length:
        raise InputError(
            "name", f"use at most {Campaign._meta.get_field('name').max_length} characters"
        )
    if problem := text_problem(name):
        raise InputError("name", problem)
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
        matrix=matrix,
    )
    if budget_cap is not None and budget_cap != "":
        budget_cap = budget_amount_check(budget_cap, field="budget_cap")
    else:
        budget_cap = None
    campaign_budget_confirm(plan=plan, cap=budget_cap, confirmed=budget_confirmed)
    if base_seed is None:
        base_seed = secrets.randbelow(2**31)
    loras = {r.pk: _pinned_loras(r) for r in [*plan.recipes.values(), *plan.matrix.recipes]}
    now = timezone.now()
    template_version = plan.template_version
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            template_version=template_version,
            recipe=plan.recipe,
            csv_filename=csv_filename,
            csv_columns=plan.parsed.columns,
            csv_rows=plan.parsed.rows,
            variations=plan.cells_per_row,
            matrix=plan.matrix.spec if plan.matrix.varies or plan.matrix.seeds_given else {},
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
        cells = plan.matrix.cells()
        rows = zip(plan.parsed.rows, plan.row_purposes, strict=True)
        for row_index, (row, purpose) in enumerate(rows):
            # Each version's prompt once per row: a template axis compares them.
            prompts = {
                version.pk: (render(version.body, row), render(version.negative_prompt, row))
                for version in {plan.template_for(cell) for cell in cells}
            }
            # One seed per (row, seed index), shared by every cell with that index: the same
            # rows and seeds are compared across recipes, LoRA weights and parameters.
            seeds: dict[int, int] = {}
            for variation, cell in enumerate(cells):
                chosen = cell.recipe or plan.recipes[purpose]
                seed = cell.seed
                if seed is None:
                    seed = seeds.get(cell.seed_index)
                if seed is None:
                    seed = seeds[cell.seed_index] = _seed(
                        chosen, seed_policy, base_seed, row_index, cell.seed_index
                    )
                pinned = cell_loras(loras[chosen.pk], cell, plan.matrix.lora_versions)
                version = plan.template_for(cell)
                prompt, negative = prompts[version.pk]
                # Every channel of a cell shares its seed: the same picture, reframed.
                for output in plan.outputs_for(row_index, chosen):
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
                            template_version=version,
                            row_data=row,
                            prompt=prompt,
                            negative_prompt=negative,
                            seed=seed,
                            params=cell_params(_recipe_params(chosen, output.size), cell),
                            base_model=chosen.base_model,
                            loras=pinned,
                            axes=cell.axes(),
                            queued_at=now,
                        )
                    )
        items_dispatch(items, priority=priority)
        Item.objects.bulk_create(items, batch_size=1000)
        items_announce(item_ids=[item.pk for item in items])
    return campaign


def _seed(recipe: Recipe, policy: str, base_seed: int, row_index: int, index: int) -> int:
    if policy != SeedPolicy.FIXED:
        return secrets.randbelow(2**32)
    if recipe.base_model.backend == Backend.AUTOMATIC1111:
        # AUTOMATIC1111 gives image i of a batch seed + i: consecutive seeds let a row's
        # variations share one call.
        return derive_seed(base_seed, row_index, 0) + index
    return derive_seed(base_seed, row_index, index)


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
            template_version_id=item.template_version_id,
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
