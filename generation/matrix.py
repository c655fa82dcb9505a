"""Variation matrices: the axes a campaign varies per CSV row, and the cells they make.

A matrix has up to six axes, each optional: seeds (a count or a list of seeds), LoRA weight
sets (the product of per-LoRA weight lists, or a list of named combinations), recipes (the same
rows and seeds under each recipe: an A/B comparison is a two-recipe matrix), prompt template
versions (versions of one template: each item's prompt is expanded from its own version),
guidance scales and step counts. ``product`` makes every combination; ``zip`` pairs the given
axes up (they need the same length). Without a seeds axis a row gets ``variations`` seeds,
crossed with the cells.

The stored form (``Campaign.matrix``) is what ``matrix_parse`` returns as ``Matrix.spec``::

    {"mode": "product", "seeds": 20, "loras": {"style-a": [0.4, 0.8], "style-b": [0, 0.5]},
     "recipes": ["demo-tiny:1", "demo-tiny:2"], "templates": ["product-shot v1",
     "product-shot v2"], "guidance": [5, 7.5], "steps": [20, 30]}

``"template"`` is accepted for ``"templates"``; a template version is ``NAME vN``, ``NAME:N``
or its id, and every version of the axis must be of one template.

``"lora_sets": [{"name": "soft", "weights": {"style-a": 0.4}}, ...]`` replaces ``"loras"``
for named combinations. Every problem is an InputError naming the axis and the value.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field

from django.conf import settings

from generation.models import LoraVersion, PromptTemplateVersion, Recipe
from studio.errors import FieldError, InputError

MODES = ("product", "zip")
# The ranges the registry's validators allow (LoraVersion.default_weight, Recipe fields).
LORA_WEIGHT_RANGE = (-4.0, 4.0)
GUIDANCE_RANGE = (0.0, 30.0)
STEPS_RANGE = (1, 200)
MAX_SEED = 2**32 - 1

# The error field of each axis: the form field and command-line option that shows it.
AXIS_FIELDS = {
    "seeds": "seeds",
    "lora": "lora_matrix",
    "recipe": "matrix_recipes",
    "template": "matrix_templates",
    "guidance": "guidance",
    "steps": "steps",
}
AXIS_LABELS = {
    "seeds": "seeds",
    "lora": "LoRA weight sets",
    "recipe": "recipes",
    "template": "template versions",
    "guidance": "guidance scales",
    "steps": "step counts",
}
_LORA_REF = re.compile(r"^([a-z0-9][a-z0-9_-]*)(?::(\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class LoraSet:
    """One LoRA combination: a label and the weight of each LoRA it names."""

    label: str
    weights: dict[str, float]  # LoRA name -> weight
    named: bool = False


@dataclass(frozen=True)
class Cell:
    """One place in the matrix; every row makes one image (per output size) for each cell."""

    seed_index: int  # 0-based: rows share seed i across every other axis
    seed: int | None = None  # an explicit seed from a seed list
    lora: LoraSet | None = None
    recipe: Recipe | None = None
    guidance: float | None = None
    steps: int | None = None
    template: PromptTemplateVersion | None = None

    def axes(self) -> dict:
        """What ``Item.axes`` records: the axes the matrix has, seed numbered from 1."""
        out: dict = {"seed": self.seed_index + 1}
        if self.lora is not None:
            out["lora"] = dict(self.lora.weights)
            if self.lora.named:
                out["lora_set"] = self.lora.label
        if self.recipe is not None:
            out["recipe"] = f"{self.recipe.name} v{self.recipe.version}"
        if self.template is not None:
            out["template"] = str(self.template)
        if self.guidance is not None:
            out["guidance"] = self.guidance
        if self.steps is not None:
            out["steps"] = self.steps
        return out


@dataclass
class Matrix:
    mode: str = "product"
    seed_count: int = 1
    seed_values: list[int] | None = None  # explicit seeds, else derived from the base seed
    seeds_given: bool = False
    lora_sets: list[LoraSet] = field(default_factory=list)
    lora_versions: dict[str, LoraVersion] = field(default_factory=dict)
    recipes: list[Recipe] = field(default_factory=list)
    templates: list[PromptTemplateVersion] = field(default_factory=list)
    guidance: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    spec: dict = field(default_factory=dict)

    def _given(self) -> dict[str, list]:
        axes: dict[str, list] = {}
        if self.lora_sets:
            axes["lora"] = self.lora_sets
        if self.recipes:
            axes["recipe"] = self.recipes
        if self.templates:
            axes["template"] = self.templates
        if self.guidance:
            axes["guidance"] = self.guidance
        if self.steps:
            axes["steps"] = self.steps
        return axes

    def axis_sizes(self) -> dict[str, int]:
        """Values per axis, seeds first: ``{"seeds": 20, "lora": 4}``."""
        return {"seeds": self.seed_count} | {k: len(v) for k, v in self._given().items()}

    @property
    def cell_count(self) -> int:
        sizes = self.axis_sizes()
        if self.mode == "zip":
            zipped = [n for axis, n in sizes.items() if axis != "seeds" or self.seeds_given]
            length = zipped[0] if zipped else 1
            return length * (1 if self.seeds_given else self.seed_count)
        return math.prod(sizes.values())

    def describe(self) -> str:
        """In words: ``20 seeds × 4 LoRA weight sets`` (``zip of …`` when zipped)."""
        parts = [f"{n} {AXIS_LABELS[axis]}" for axis, n in self.axis_sizes().items()]
        if self.mode == "zip" and len(parts) > 1:
            return "zip of " + ", ".join(parts)
        return " × ".join(parts)

    @property
    def varies(self) -> bool:
        """Whether it varies more than the seed (a grid by axis is worth showing)."""
        return bool(self._given())

    def cells(self) -> list[Cell]:
        """Every cell, recipes outermost and seeds innermost (a row's images of one recipe
        and LoRA set are consecutive)."""
        values = self.seed_values
        seeds = [(i, values[i] if values else None) for i in range(self.seed_count)]
        given = self._given()
        names = list(given)
        if self.mode == "zip" and self.seeds_given:
            combos = [(seed, *rest) for seed, *rest in zip(seeds, *given.values(), strict=True)]
        elif self.mode == "zip":
            pairs = list(zip(*given.values(), strict=True)) if given else [()]
            combos = [(seed, *rest) for rest in pairs for seed in seeds]
        else:
            combos = [(c[-1], *c[:-1]) for c in itertools.product(*given.values(), seeds)]
        cells = []
        for seed, *values in combos:
            chosen = dict(zip(names, values, strict=True))
            cells.append(
                Cell(
                    seed_index=seed[0],
                    seed=seed[1],
                    lora=chosen.get("lora"),
                    recipe=chosen.get("recipe"),
                    template=chosen.get("template"),
                    guidance=chosen.get("guidance"),
                    steps=chosen.get("steps"),
                )
            )
        return cells


def _error(axis: str, message: str) -> FieldError:
    return FieldError(AXIS_FIELDS.get(axis, "matrix"), f"{AXIS_LABELS.get(axis, axis)}: {message}")


def _number(value, *, axis: str, kind: type, low: float, high: float, what: str = "value"):
    text = str(value).strip()
    try:
        number = kind(text) if kind is float else int(text)
    except (TypeError, ValueError):
        raise InputError([_error(axis, f"{text!r} is not a number")]) from None
    if kind is float and not math.isfinite(number):
        raise InputError([_error(axis, f"{text!r} is not a number")])
    if not low <= number <= high:
        raise InputError([_error(axis, f"{what} {text} is outside {low:g}…{high:g}")])
    return number


def _values(raw, *, axis: str) -> list:
    """A list from a list, or from text separated by commas or spaces."""
    if isinstance(raw, str):
        return [v for v in re.split(r"[,\s]+", raw.strip()) if v]
    if isinstance(raw, (int, float)):
        return [raw]
    if isinstance(raw, list):
        return raw
    raise InputError([_error(axis, f"expected a list of values, got {raw!r}")])


def _distinct(values: list, *, axis: str) -> list:
    seen = set()
    for value in values:
        key = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        if key in seen:
            raise InputError([_error(axis, f"{value!r} is listed twice")])
        seen.add(key)
    return values


def _number_axis(raw, *, axis: str, kind: type, low: float, high: float) -> list:
    values = _values(raw, axis=axis)
    if not values:
        raise InputError([_error(axis, "the axis is empty; give at least one value")])
    return _distinct(
        [_number(v, axis=axis, kind=kind, low=low, high=high) for v in values], axis=axis
    )


def lora_matrix_parse(text: str) -> dict:
    """The LoRA axis from text: ``style-a=0.4,0.8;style-b=0,0.5`` (every combination of the
    weights) -> ``{"loras": {...}}``, or JSON: an object of weight lists, or a list of named
    combinations ``[{"name": "soft", "weights": {"style-a": 0.4}}]`` -> ``{"lora_sets": [...]}``."""
    text = (text or "").strip()
    if not text:
        return {}
    if text[0] in "[{":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError([_error("lora", f"not valid JSON ({exc.msg})")]) from None
        return {"lora_sets": value} if isinstance(value, list) else {"loras": value}
    loras: dict[str, list] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, equals, weights = part.partition("=")
        name = name.strip()
        if not equals or not name:
            raise InputError(
                [_error("lora", f"{part!r}: write NAME=WEIGHT,WEIGHT, e.g. style-a=0.4,0.8")]
            )
        if name in loras:
            raise InputError([_error("lora", f"{name!r} is listed twice")])
        loras[name] = [w for w in re.split(r"[,\s]+", weights.strip()) if w]
    if not loras:
        raise InputError([_error("lora", "the axis is empty; give NAME=WEIGHT,WEIGHT")])
    return {"loras": loras}


def _lora_version(ref: str, cache: dict[str, LoraVersion]) -> tuple[str, LoraVersion]:
    match = _LORA_REF.match(str(ref).strip())
    if not match:
        raise InputError([_error("lora", f"{ref!r} is not a LoRA name (NAME or NAME:VERSION)")])
    name, version = match.group(1), match.group(2)
    if name in cache and (version is None or cache[name].version == int(version)):
        return name, cache[name]
    found = LoraVersion.objects.filter(name=name)
    found = found.filter(version=int(version)) if version else found.filter(is_active=True)
    lora = found.first()
    if lora is None:
        if LoraVersion.objects.filter(name=name).exists():
            raise InputError([_error("lora", f"{name!r} has no version {version}")])
        known = ", ".join(sorted(set(LoraVersion.objects.values_list("name", flat=True))))
        raise InputError([_error("lora", f"unknown LoRA {name!r} (known: {known or 'none'})")])
    if name in cache and cache[name].pk != lora.pk:
        raise InputError([_error("lora", f"{name!r} is named in two versions")])
    cache[name] = lora
    return name, lora


def _weight(value, *, name: str) -> float:
    low, high = LORA_WEIGHT_RANGE
    return _number(value, axis="lora", kind=float, low=low, high=high, what=f"{name} weight")


def _lora_axis(spec: dict) -> tuple[list[LoraSet], dict[str, LoraVersion], dict]:
    cache: dict[str, LoraVersion] = {}
    if "loras" in spec and "lora_sets" in spec:
        raise InputError([_error("lora", "give weight lists or named sets, not both")])
    if "loras" in spec:
        raw = spec["loras"]
        if isinstance(raw, str):
            raw = lora_matrix_parse(raw).get("loras", {})
        if not isinstance(raw, dict) or not raw:
            raise InputError([_error("lora", "the axis is empty; give NAME=WEIGHT,WEIGHT")])
        lists: dict[str, list[float]] = {}
        for ref, weights in raw.items():
            name, _lora = _lora_version(ref, cache)
            values = _values(weights, axis="lora")
            if not values:
                raise InputError([_error("lora", f"{name}: no weights given")])
            lists[name] = _distinct([_weight(w, name=name) for w in values], axis="lora")
        sets = [
            LoraSet(
                " · ".join(f"{n} {w:g}" for n, w in zip(lists, combo, strict=True)),
                dict(zip(lists, combo, strict=True)),
            )
            for combo in itertools.product(*lists.values())
        ]
        refs = {_ref(name, cache): weights for name, weights in lists.items()}
        return sets, cache, {"loras": refs}
    raw = spec["lora_sets"]
    if not isinstance(raw, list) or not raw:
        raise InputError([_error("lora", "the axis is empty; give at least one named set")])
    sets, stored = [], []
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("weights"), dict):
            raise InputError(
                [_error("lora", f'set {number}: expected {{"name": …, "weights": {{…}}}}')]
            )
        label = str(entry.get("name") or "").strip() or f"set {number}"
        weights = {}
        for ref, weight in entry["weights"].items():
            name, _lora = _lora_version(ref, cache)
            weights[name] = _weight(weight, name=name)
        if not weights:
            raise InputError([_error("lora", f"set {label!r} names no LoRA")])
        sets.append(LoraSet(label, weights, named=True))
        stored.append({"name": label, "weights": {_ref(n, cache): w for n, w in weights.items()}})
    _distinct([s.label for s in sets], axis="lora")
    return sets, cache, {"lora_sets": stored}


def _ref(name: str, cache: dict[str, LoraVersion]) -> str:
    return f"{name}:{cache[name].version}"


def _recipe(ref) -> Recipe:
    text = str(ref).strip()
    name, _colon, version = text.partition(":")
    found = Recipe.objects.select_related("base_model")
    if text.isdigit():
        recipe = found.filter(pk=int(text)).first()
    elif version:
        recipe = (
            found.filter(name=name, version=int(version)).first() if version.isdigit() else None
        )
    else:
        recipe = found.filter(name=name, is_active=True).first()
    if recipe is None:
        known = ", ".join(
            sorted(f"{n}:{v}" for n, v in Recipe.objects.values_list("name", "version"))
        )
        raise InputError([_error("recipe", f"unknown recipe {text!r} (known: {known or 'none'})")])
    return recipe


_TEMPLATE_REF = re.compile(r"^(.+?)(?:\s+v|:)(\d+)$", re.IGNORECASE)


def _template_version(ref) -> PromptTemplateVersion:
    text = str(ref).strip()
    found = PromptTemplateVersion.objects.select_related("template")
    match = _TEMPLATE_REF.match(text)
    if text.isdigit():
        version = found.filter(pk=int(text)).first()
    elif match:
        version = found.filter(
            template__name=match.group(1).strip(), version=int(match.group(2))
        ).first()
    else:
        version = found.filter(template__name=text, is_active=True).first()
    if version is None:
        known = ", ".join(str(v) for v in found.order_by("template__name", "version")[:20])
        raise InputError(
            [
                _error(
                    "template",
                    f"unknown template version {text!r} (write NAME vN, NAME:N or an id; "
                    f"known: {known or 'none'})",
                )
            ]
        )
    return version


def _template_axis(raw) -> list[PromptTemplateVersion]:
    refs = _values(raw, axis="template") if not isinstance(raw, str) else _template_refs(raw)
    if not refs:
        raise InputError([_error("template", "the axis is empty; give at least one version")])
    versions = [_template_version(ref) for ref in refs]
    _distinct([v.pk for v in versions], axis="template")
    families = {v.template_id for v in versions}
    if len(families) > 1:
        names = ", ".join(sorted({v.template.name for v in versions}))
        raise InputError(
            [
                _error(
                    "template",
                    f"compare versions of one template, not different templates ({names})",
                )
            ]
        )
    return versions


def _template_refs(text: str) -> list[str]:
    """``"shot v1, shot v2"`` or ``"shot:1 shot:2"`` or ids: commas split, else spaces unless
    a space separates a name from its ``vN``."""
    text = text.strip()
    if not text:
        return []
    if "," in text:
        return [p.strip() for p in text.split(",") if p.strip()]
    return [p for p in re.split(r"\s+(?!v\d)", text) if p]


def matrix_parse(spec: dict | str | None, *, variations: int = 1) -> Matrix:
    """Validate a matrix (a dict, or its JSON text) and resolve its LoRAs and recipes.

    Raises InputError naming the axis and the value; reads the registry, writes nothing.
    Limits (the cells' count against the caps) are ``matrix_check``'s, once the rows and
    output sizes are known.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec) if spec.strip() else {}
        except json.JSONDecodeError as exc:
            raise InputError("matrix", f"not valid JSON ({exc.msg})") from None
    spec = dict(spec or {})
    if not isinstance(spec, dict):
        raise InputError("matrix", "expected a JSON object of axes")
    if "template" in spec:
        if "templates" in spec:
            raise InputError([_error("template", "give templates or template, not both")])
        spec["templates"] = spec.pop("template")
    known = {"mode", "seeds", "loras", "lora_sets", "recipes", "templates", "guidance", "steps"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InputError(
            "matrix", f"unknown axis {unknown[0]!r} (axes: {', '.join(sorted(known))})"
        )
    mode = str(spec.get("mode") or "product").strip().lower()
    if mode not in MODES:
        raise InputError("matrix", f"mode must be product or zip, got {mode!r}")
    matrix = Matrix(mode=mode, seed_count=variations, spec={"mode": mode})
    maximum = settings.STUDIO_MAX_VARIATIONS
    if spec.get("seeds") not in (None, ""):
        raw = spec["seeds"]
        if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()):
            count = int(raw)
            if count < 1:
                raise InputError([_error("seeds", "the axis is empty; give at least 1 seed")])
            matrix.seed_count = count
            matrix.spec["seeds"] = count
        else:
            values = _number_axis(raw, axis="seeds", kind=int, low=0, high=MAX_SEED)
            matrix.seed_count, matrix.seed_values = len(values), values
            matrix.spec["seeds"] = values
        matrix.seeds_given = True
    if not 1 <= matrix.seed_count <= maximum:
        raise InputError(
            [
                _error(
                    "seeds",
                    f"at most {maximum} per row (STUDIO_MAX_VARIATIONS), got {matrix.seed_count}",
                )
            ]
        )
    if "loras" in spec or "lora_sets" in spec:
        matrix.lora_sets, matrix.lora_versions, stored = _lora_axis(spec)
        matrix.spec |= stored
    if spec.get("recipes") not in (None, "", []):
        refs = _values(spec["recipes"], axis="recipe")
        matrix.recipes = [_recipe(ref) for ref in refs]
        _distinct([r.pk for r in matrix.recipes], axis="recipe")
        matrix.spec["recipes"] = [f"{r.name}:{r.version}" for r in matrix.recipes]
    elif spec.get("recipes") == []:
        raise InputError([_error("recipe", "the axis is empty; give at least one recipe")])
    if spec.get("templates") not in (None, "", []):
        matrix.templates = _template_axis(spec["templates"])
        matrix.spec["templates"] = [str(v) for v in matrix.templates]
    elif spec.get("templates") == []:
        raise InputError([_error("template", "the axis is empty; give at least one version")])
    for axis, kind, (low, high) in (
        ("guidance", float, GUIDANCE_RANGE),
        ("steps", int, STEPS_RANGE),
    ):
        if axis in spec and spec[axis] not in (None, ""):
            values = _number_axis(spec[axis], axis=axis, kind=kind, low=low, high=high)
            setattr(matrix, axis, values)
            matrix.spec[axis] = values
        elif axis in spec and spec[axis] == "":
            pass
    if mode == "zip":
        sizes = {a: n for a, n in matrix.axis_sizes().items() if a != "seeds" or matrix.seeds_given}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{AXIS_LABELS[a]} {n}" for a, n in sizes.items())
            raise InputError(
                "matrix", f"zip pairs values up, so its axes need the same length: {listed}"
            )
    return matrix


def matrix_check(*, matrix: Matrix, rows: int, outputs: int) -> None:
    """The caps: images per row (cells × output sizes) and per campaign. The message names
    every axis's size."""
    per_row = matrix.cell_count * outputs
    sizes = matrix.describe() + (f" × {outputs} output sizes" if outputs > 1 else "")
    if per_row > settings.STUDIO_MAX_MATRIX_ITEMS_PER_ROW:
        raise InputError(
            "matrix",
            f"{sizes} = {per_row:,} images per row, more than "
            f"{settings.STUDIO_MAX_MATRIX_ITEMS_PER_ROW:,} (STUDIO_MAX_MATRIX_ITEMS_PER_ROW)",
        )
    total = matrix.cell_count * outputs * rows if outputs else 0
    if total > settings.STUDIO_MAX_CAMPAIGN_ITEMS:
        raise InputError(
            "matrix",
            f"{rows:,} rows × {sizes} = {total:,} images, more than "
            f"{settings.STUDIO_MAX_CAMPAIGN_ITEMS:,} per campaign (STUDIO_MAX_CAMPAIGN_ITEMS)",
        )


def cell_loras(pinned: list[dict], cell: Cell, versions: dict[str, LoraVersion]) -> list[dict]:
    """The recipe's pinned LoRAs with the cell's weights: a weight replaces the recipe's, a
    LoRA the recipe lacks is added, and weight 0 leaves the LoRA out."""
    if cell.lora is None:
        return pinned
    out = []
    weights = dict(cell.lora.weights)
    for pin in pinned:
        if pin["name"] in weights:
            pin = _pin(versions[pin["name"]], weights.pop(pin["name"]))
        if pin["weight"] != 0:
            out.append(pin)
    out += [_pin(versions[name], weight) for name, weight in weights.items() if weight != 0]
    return out


def _pin(lora: LoraVersion, weight: float) -> dict:
    return {
        "id": lora.pk,
        "name": lora.name,
        "version": lora.version,
        "file": lora.file,
        "sha256": lora.sha256,
        "weight": weight,
    }


def cell_params(params: dict, cell: Cell) -> dict:
    """A recipe's parameters with the cell's guidance scale and steps."""
    if cell.guidance is None and cell.steps is None:
        return params
    params = dict(params)
    if cell.guidance is not None:
        params["guidance_scale"] = cell.guidance
    if cell.steps is not None:
        params["steps"] = cell.steps
    return params


def axis_value(axes: dict, axis: str) -> str:
    """One axis of an ``Item.axes``, as a grid column label."""
    value = axes.get(axis)
    if value is None:
        return "—"
    if axis == "lora":
        return axes.get("lora_set") or " · ".join(f"{n} {w:g}" for n, w in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
