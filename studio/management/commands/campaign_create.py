from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

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
        parser.add_argument("--approve-at", type=float)
        parser.add_argument("--reject-below", type=float)
        parser.add_argument("--budget-cap", help="The most this campaign may spend, e.g. 250.00.")
        parser.add_argument(
            "--over-budget",
            action="store_true",
            help="Create it even if the estimate is over its cap or the month's budget.",
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
            )
        except InputError as exc:
            fail("\n".join(exc.messages()))
        count = campaign.items.count()
        if opts["json"]:
            self.stdout.write(json.dumps({"id": str(campaign.pk), "items": count}))
        else:
            self.stdout.write(f"campaign {campaign.pk} created with {count} items")
