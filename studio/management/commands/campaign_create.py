from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.matrix import lora_matrix_parse
from generation.models import PromptTemplate, Recipe
from studio.errors import InputError
from studio.launch import campaign_launch


class Command(BaseCommand):
    help = "Create a campaign from a template, a CSV and a recipe, and queue its images."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--template", required=True, help="Template name (active version).")
        parser.add_argument(
            "--csv",
            required=True,
            help="Path to a CSV with a header row; its encoding and delimiter are detected.",
        )
        parser.add_argument("--recipe", required=True, help="Recipe name (active version).")
        parser.add_argument("--variations", type=int, default=1)
        parser.add_argument("--seed", type=int, help="Base seed (default: random, recorded).")
        parser.add_argument(
            "--channels", help="Output sizes: channel names or WIDTHxHEIGHT, e.g. instagram,web."
        )
        parser.add_argument("--approve-at", type=float)
        parser.add_argument("--reject-below", type=float)
        parser.add_argument("--budget-cap", help="The most this campaign may spend, e.g. 250.00.")
        parser.add_argument(
            "--over-budget",
            action="store_true",
            help="Create it even if the estimate is over its cap or the month's budget.",
        )
        matrix = parser.add_argument_group("variation matrix")
        matrix.add_argument(
            "--seeds", help="Seeds per row (a count, e.g. 20) or a list of seeds (1,2,3)."
        )
        matrix.add_argument(
            "--lora-matrix",
            help='LoRA weights, every combination: "style-a=0.4,0.8;style-b=0,0.5" (NAME or '
            "NAME:VERSION), or JSON named sets.",
        )
        matrix.add_argument(
            "--recipes", help="Compare recipes on the same rows and seeds: a,b or name:version."
        )
        matrix.add_argument(
            "--templates",
            help='Compare versions of one prompt template on the same rows and seeds: "NAME v1, '
            "NAME v2\", NAME:1,NAME:2 or version ids (the first is the campaign's template).",
        )
        matrix.add_argument("--guidance", help="Guidance scales, e.g. 5,7.5.")
        matrix.add_argument("--steps", help="Step counts, e.g. 20,30.")
        matrix.add_argument(
            "--zip", action="store_true", help="Pair the axes' values up instead of combining."
        )
        matrix.add_argument(
            "--matrix", metavar="FILE", help="A JSON matrix file; the options above override it."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **opts):
        def fail(message: str):
            raise CommandError(message, returncode=2)

        version = None
        template = PromptTemplate.objects.filter(name=opts["template"]).first()
        if template is not None:
            version = template.active_version()
        if version is None:
            names = ", ".join(PromptTemplate.objects.values_list("name", flat=True)) or "none"
            fail(f"template: no template named {opts['template']!r} (known: {names})")
        try:
            matrix = _matrix(opts)
        except InputError as exc:
            fail("\n".join(exc.messages()))
        recipe = Recipe.objects.filter(name=opts["recipe"], is_active=True).first()
        if recipe is None:
            names = ", ".join(Recipe.objects.filter(is_active=True).values_list("name", flat=True))
            fail(f"recipe: no recipe named {opts['recipe']!r} (known: {names or 'none'})")
        path = Path(opts["csv"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"csv: cannot read {path}: {exc.strerror or exc}")
        try:
            campaign = campaign_launch(
                name=opts["name"],
                template_version=version,
                recipe=recipe,
                csv_bytes=data,
                csv_filename=path.name,
                variations=opts["variations"],
                base_seed=opts["seed"],
                approve_at=opts["approve_at"],
                reject_below=opts["reject_below"],
                budget_cap=opts["budget_cap"],
                budget_confirmed=opts["over_budget"],
                matrix=matrix,
                channels=[c for c in (opts["channels"] or "").split(",") if c.strip()],
            )
        except InputError as exc:
            fail("\n".join(exc.messages()))
        count = campaign.items.count()
        if opts["json"]:
            self.stdout.write(json.dumps({"id": str(campaign.pk), "items": count}))
        else:
            self.stdout.write(f"campaign {campaign.pk} created with {count} items")


def _matrix(opts) -> dict:
    """The matrix from --matrix FILE and the axis options (which win over the file)."""
    matrix: dict = {}
    if opts.get("matrix"):
        path = Path(opts["matrix"])
        try:
            matrix = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError("matrix", f"cannot read {path}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError("matrix", f"{path} is not a JSON object ({exc})") from None
        if not isinstance(matrix, dict):
            raise InputError("matrix", f"{path} is not a JSON object of axes")
    if opts.get("lora_matrix"):
        matrix.pop("loras", None)
        matrix.pop("lora_sets", None)
        matrix |= lora_matrix_parse(opts["lora_matrix"])
    for option, axis in (("seeds", "seeds"), ("recipes", "recipes"), ("guidance", "guidance")):
        if opts.get(option):
            matrix[axis] = opts[option]
    if opts.get("steps"):
        matrix["steps"] = opts["steps"]
    if opts.get("templates"):
        matrix.pop("template", None)
        matrix["templates"] = opts["templates"]
    if opts.get("zip"):
        matrix["mode"] = "zip"
    return matrix
