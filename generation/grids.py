"""Reading a campaign's variation matrix: the campaign page's grid (rows × one axis) and the
comparison of the recipes of a recipe axis, or the template versions of a template axis (the
A/B trial's numbers and verdict)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Avg, Count, Q, Sum

from generation.matrix import axis_value
from generation.models import PromptTemplateVersion, Recipe
from generation.selectors import item_product
from studio.errors import InputError

# --- Reading: the campaign page's grid ------------------------------------------------------

GRID_ROWS = 10
# Campaign.matrix keys -> the Item.axes key a grid is drawn by.
_SPEC_AXES = {
    "loras": "lora",
    "lora_sets": "lora",
    "recipes": "recipe",
    "templates": "template",
    "guidance": "guidance",
    "steps": "steps",
}
GRID_LABELS = {
    "seed": "seed",
    "lora": "LoRA weights",
    "recipe": "recipe",
    "template": "template version",
    "guidance": "guidance",
    "steps": "steps",
}


def grid_axes(campaign) -> list[str]:
    """The axes a campaign's grid can be drawn by: the seed, then its matrix's axes."""
    axes = ["seed"]
    for key in campaign.matrix or {}:
        axis = _SPEC_AXES.get(key)
        if axis and axis not in axes:
            axes.append(axis)
    return axes


@dataclass
class Grid:
    axis: str
    columns: list[str]
    rows: list[tuple[int, str, list[list]]]  # (row index, what it is about, items per column)
    seed: int | None  # the seed number shown when the grid is not by seed
    seeds: int
    page: int
    pages: int


def matrix_grid(*, campaign, axis: str, seed: int | None = None, page: int = 1) -> Grid:
    """Rows × the values of one axis, GRID_ROWS rows a page. A grid by another axis than the
    seed shows one seed number (the first unless ``seed``), so a cell compares like with
    like. Raises InputError("grid") for an axis the campaign does not have."""
    axes = grid_axes(campaign)
    if axis not in axes:
        raise InputError("grid", f"this campaign has no {axis!r} axis (it has: {', '.join(axes)})")
    seeds = (
        campaign.items.filter(axes__has_key="seed")
        .order_by("-axes__seed")
        .values_list("axes__seed", flat=True)
        .first()
        or 1
    )
    if axis != "seed":
        seed = seed if seed and 1 <= seed <= seeds else 1
    else:
        seed = None
    total_rows = len(campaign.csv_rows or [])
    pages = max(1, math.ceil(total_rows / GRID_ROWS))
    page = min(max(page, 1), pages)
    first = (page - 1) * GRID_ROWS
    items = campaign.items.filter(
        row_index__gte=first, row_index__lt=first + GRID_ROWS, regenerated_from__isnull=True
    ).select_related("asset", "quality")
    if seed is not None:
        items = items.filter(axes__seed=seed)
    items = items.order_by("row_index", "variation", "channel")
    columns: list[str] = []
    cells: dict[tuple[int, str], list] = {}
    row_data: dict[int, str] = {}
    for item in items:
        value = axis_value(item.axes or {}, axis)
        if value not in columns:
            columns.append(value)
        cells.setdefault((item.row_index, value), []).append(item)
        row_data[item.row_index] = item_product(item.row_data)
    rows = [
        (index, row_data[index], [cells.get((index, value), []) for value in columns])
        for index in sorted(row_data)
    ]
    return Grid(axis, columns, rows, seed, seeds, page, pages)


# --- Reading: a recipe or template comparison (the A/B trial) ------------------------------

MIN_DECIDED = 5  # decided images per version before a verdict is given
# The axes a comparison is drawn for: Campaign.matrix key, the Item field its items group by.
COMPARED_AXES = {"recipe": ("recipes", "recipe"), "template": ("templates", "template_version")}


@dataclass
class RecipeResult:
    """One compared version (a Recipe, or a PromptTemplateVersion) and its numbers."""

    version: object
    images: int
    approved: int
    rejected: int
    mean_score: float | None
    cost: object  # Decimal

    @property
    def recipe(self):
        """The compared version (the name from when only recipes were compared)."""
        return self.version

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def acceptance(self) -> float | None:
        return self.approved / self.decided if self.decided else None

    @property
    def cost_per_approved(self):
        return self.cost / self.approved if self.approved else None


@dataclass
class Comparison:
    results: list[RecipeResult]
    winner: object | None
    verdict: str
    axis: str = "recipe"  # or "template"

    @property
    def label(self) -> str:
        return "Template versions" if self.axis == "template" else "Recipes"


def _compared_versions(campaign, axis: str) -> list:
    refs = (campaign.matrix or {}).get(COMPARED_AXES[axis][0]) or []
    versions = []
    for ref in refs:
        if axis == "recipe":
            name, _colon, version = str(ref).partition(":")
            found = Recipe.objects.filter(name=name, version=int(version or 0)).first()
        else:
            name, _v, version = str(ref).rpartition(" v")
            found = (
                PromptTemplateVersion.objects.select_related("template")
                .filter(template__name=name, version=int(version or 0))
                .first()
                if version.isdigit()
                else None
            )
        if found is not None:
            versions.append(found)
    return versions


def recipe_comparison(*, campaign) -> Comparison | None:
    """Each recipe of a campaign's recipe axis on the same rows and seeds: acceptance rate
    (approved of decided), mean quality score, cost per approved image, and a verdict once
    every recipe has MIN_DECIDED decided images. None without a recipe axis."""
    return matrix_comparison(campaign=campaign, axis="recipe")


def template_comparison(*, campaign) -> Comparison | None:
    """The same as recipe_comparison for the template versions of a template axis."""
    return matrix_comparison(campaign=campaign, axis="template")


def matrix_comparison(*, campaign, axis: str) -> Comparison | None:
    """The versions of a campaign's recipe or template axis compared on the same rows and
    seeds; None when the campaign does not compare two or more along ``axis``."""
    if axis not in COMPARED_AXES:
        return None
    versions = _compared_versions(campaign, axis)
    if len(versions) < 2:
        return None
    group = COMPARED_AXES[axis][1]
    rows = {
        row[group]: row
        for row in campaign.items.filter(regenerated_from__isnull=True)
        .values(group)
        .annotate(
            images=Count("pk"),
            approved=Count("pk", filter=Q(status="approved")),
            rejected=Count("pk", filter=Q(status="rejected")),
            mean=Avg("quality__overall"),
            cost=Sum("cost"),
        )
    }
    results = [
        RecipeResult(
            version,
            rows.get(version.pk, {}).get("images", 0),
            rows.get(version.pk, {}).get("approved", 0),
            rows.get(version.pk, {}).get("rejected", 0),
            rows.get(version.pk, {}).get("mean"),
            rows.get(version.pk, {}).get("cost") or 0,
        )
        for version in versions
    ]
    short = [r for r in results if r.decided < MIN_DECIDED]
    if short:
        need = ", ".join(f"{r.version} {r.decided}/{MIN_DECIDED}" for r in short)
        return Comparison(
            results, None, f"No verdict yet: too few decided images ({need}).", axis=axis
        )

    def key(result: RecipeResult):
        return (result.acceptance or 0, result.mean_score or 0)

    ranked = sorted(results, key=key, reverse=True)
    best, second = ranked[0], ranked[1]
    if key(best) == key(second):
        return Comparison(
            results, None, f"A tie: {best.version} and {second.version} do as well.", axis=axis
        )
    cost = (
        f", {best.cost_per_approved:.4f} per approved image"
        if best.cost_per_approved is not None
        else ""
    )
    verdict = (
        f"{best.version} wins: {best.acceptance:.0%} accepted against "
        f"{second.acceptance:.0%} for {second.version}"
        + (f", mean score {best.mean_score:.2f}" if best.mean_score is not None else "")
        + cost
        + "."
    )
    return Comparison(results, best.version, verdict, axis=axis)
