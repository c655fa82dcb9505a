"""Managers' reports for scripts and cron:

    python manage.py report overview|campaigns|recipes|prompts|hosting [--month YYYY-MM]
        [--campaign ID] [--bar PERCENT] [--min-images N] [--json]

Without --json, each table is printed as aligned text; with it, the report's numbers as JSON
(money as strings in settings.STUDIO_CURRENCY, exact; rates as fractions 0..1)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalogue.reports import selectors, tables
from generation.models import Campaign
from generation.services import month_parse
from studio.errors import InputError

REPORTS = ("overview", "campaigns", "recipes", "prompts", "hosting")


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Campaign):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not isinstance(v, Campaign)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Command(BaseCommand):
    help = "Print a managers' report (overview, campaigns, recipes, prompts, hosting)."

    def add_arguments(self, parser):
        parser.add_argument("report", help=f"one of: {', '.join(REPORTS)}")
        parser.add_argument("--month", help="YYYY-MM (overview and hosting: default this month)")
        parser.add_argument("--campaign", help="a campaign id")
        parser.add_argument("--bar", type=int, default=70, help="acceptance bar in percent")
        parser.add_argument("--min-images", type=int, default=None)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        name = options["report"]
        if name not in REPORTS:
            raise CommandError(
                f"report: expected one of {', '.join(REPORTS)}, got {name!r}", returncode=2
            )
        try:
            month = month_parse(options["month"], field="--month") if options["month"] else None
        except InputError as error:
            raise CommandError(error.messages()[0], returncode=2) from None
        campaign_id = options["campaign"]
        if campaign_id:
            try:
                campaign_id = uuid.UUID(campaign_id)
            except ValueError:
                raise CommandError(
                    f"--campaign: not a campaign id: {campaign_id!r}", returncode=2
                ) from None
            if not Campaign.objects.filter(pk=campaign_id).exists():
                raise CommandError(f"--campaign: no campaign with id {campaign_id}", returncode=2)
        if not 1 <= options["bar"] <= 100:
            raise CommandError(
                f"--bar: expected 1 to 100 (percent), got {options['bar']}", returncode=2
            )
        min_images = options["min_images"]
        if min_images is not None and min_images < 1:
            raise CommandError(f"--min-images: expected at least 1, got {min_images}", returncode=2)
        period = selectors.Period(month=month, campaign_id=campaign_id)
        if name == "overview":
            data = selectors.report_overview(month=month)
            printed = tables.overview_tables(data)
        elif name == "campaigns":
            data = selectors.report_campaigns(period=period)
            printed = tables.campaign_tables(data)
        elif name == "recipes":
            data = selectors.report_combinations(
                period=period, bar=options["bar"] / 100, min_images=min_images or 10
            )
            printed = tables.combination_tables(data)
        elif name == "prompts":
            data = selectors.report_prompts(period=period, min_images=min_images or 5)
            printed = tables.prompt_tables(data)
        else:
            data = selectors.report_hosting(month=month)
            printed = tables.hosting_tables(data)
        if options["json"]:
            out = {"report": name, "currency": settings.STUDIO_CURRENCY, "period": period.label}
            out["data"] = _plain(data)
            self.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
            return
        for table in printed:
            self.stdout.write(f"\n{table.title}")
            if not table.rows:
                self.stdout.write(f"  {table.empty}")
                continue
            cells = [table.headers, *[[str(c) for c in row] for row in table.rows]]
            widths = [max(len(str(row[i])) for row in cells) for i in range(len(table.headers))]
            for row in cells:
                self.stdout.write(
                    "  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
                )
