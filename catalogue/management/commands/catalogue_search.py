"""Search every image in the catalogue from the command line, with the page's filters."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from catalogue.forms import CatalogueSearchForm
from catalogue.selectors import entry_search

# The form's field for each option; the form checks every value, as on the page.
OPTIONS = {
    "status": "--status",
    "reason": "--reason",
    "campaign": "--campaign",
    "model": "--model",
    "lora": "--lora",
    "purpose": "--purpose",
    "rights": "--rights",
    "rights_expiring": "--rights-expiring",
    "withdrawn": "--withdrawn",
    "since": "--since",
    "until": "--until",
    "month": "--month",
    "min_score": "--min-score",
    "sort": "--sort",
}


class Command(BaseCommand):
    help = (
        "Search every image the campaigns made (websearch syntax: quotes, OR, -word), "
        "narrowed by status, reason, campaign, model, LoRA, purpose, rights, rights expiry "
        "and dates. Images whose asset was withdrawn are left out unless asked for."
    )

    def add_arguments(self, parser):
        parser.add_argument("query", nargs="?", default="")
        parser.add_argument("--status", action="append", help="An item status; repeatable.")
        parser.add_argument("--reason", help="A reason code, e.g. blur.")
        parser.add_argument("--campaign", help="Only this campaign id.")
        parser.add_argument("--model", help="Base model NAME or NAME:VERSION.")
        parser.add_argument("--lora", help="LoRA NAME or NAME:VERSION.")
        parser.add_argument("--purpose", help="hero, variation or thumbnail.")
        parser.add_argument("--rights", help="internal, campaign, unrestricted or custom.")
        parser.add_argument(
            "--rights-expiring",
            dest="rights_expiring",
            metavar="DAYS",
            help="Rights that end within DAYS days from today (e.g. 30).",
        )
        parser.add_argument(
            "--withdrawn",
            help="Withdrawn images are left out: include them, or only them (include|only).",
        )
        parser.add_argument("--since", help="Generated on or after YYYY-MM-DD.")
        parser.add_argument("--until", help="Generated on or before YYYY-MM-DD.")
        parser.add_argument("--month", help="Generated in YYYY-MM.")
        parser.add_argument("--min-score", dest="min_score", help="A score from 0 to 1.")
        parser.add_argument("--sort", help="relevance (default), newest, score or cost.")
        parser.add_argument("--limit", type=int, default=20, help="At most this many (1-500).")
        parser.add_argument("--json", action="store_true", help="One JSON object.")

    def handle(self, *args, query, **opts):
        limit = opts["limit"]
        if not 1 <= limit <= 500:
            raise CommandError("--limit: use a whole number from 1 to 500.", returncode=2)
        data = {"q": query}
        for name in OPTIONS:
            value = opts.get(name)
            if value is not None:
                data[name] = value
        form = CatalogueSearchForm(data)
        if not form.is_valid():
            lines = [
                f"{OPTIONS.get(name, 'QUERY' if name == 'q' else name)}: {message}"
                for name, _, message in form.error_lines()
            ]
            raise CommandError("\n".join(lines), returncode=2)
        kwargs = form.search_kwargs()
        kwargs["page"] = 1
        results = entry_search(**kwargs, per_page=limit)
        rows = [_row(entry) for entry in results.entries]
        if opts["json"]:
            facets = {
                name: {facet.value: facet.count for facet in values}
                for name, values in results.facets.items()
            }
            payload = {"count": results.total, "results": rows, "facets": facets}
            self.stdout.write(json.dumps(payload, ensure_ascii=False))
            return
        for row in rows:
            reasons = f"  ({', '.join(row['reasons'])})" if row["reasons"] else ""
            if row["rights_expired"]:
                reasons += f"  rights expired {row['rights_until']}"
            if row["asset_status"] == "withdrawn":
                reasons += "  withdrawn"
            score = f"{row['score']:.2f}" if row["score"] is not None else "-"
            self.stdout.write(
                f"{row['item_id']}  {row['status']:<9}  {score}  {row['title']}  "
                f"[{row['campaign']}]{reasons}"
            )
        self.stdout.write(f"{results.total} image{'s' if results.total != 1 else ''}")


def _row(entry) -> dict:
    item = entry.item
    asset = getattr(item, "asset", None)
    return {
        "item_id": str(entry.item_id),
        "asset_id": str(asset.pk) if asset is not None else None,
        "status": entry.status,
        "reasons": list(entry.reason_codes),
        "title": entry.title,
        "campaign": str(entry.campaign_id),
        "model": {"name": entry.model_name, "version": entry.model_version},
        "loras": [
            {"name": lora.get("name"), "version": lora.get("version"), "weight": lora.get("weight")}
            for lora in item.loras or []
        ],
        "generated_at": entry.generated_at.isoformat() if entry.generated_at else None,
        "score": entry.score,
        "cost": float(entry.cost),
        "rights": entry.rights or None,
        "rights_until": entry.rights_until.isoformat() if entry.rights_until else None,
        "rights_expired": entry.rights_expired(),
        "asset_status": entry.asset_status or None,
        # Every image's tags (CSV fields, colours, quality, CLIP, people's edits), with where
        # each came from in "tag_sources".
        "tags": list(entry.tag_names),
        "tag_sources": [
            {"tag": t["tag"], "source": t["source"], "score": t.get("score")} for t in entry.tags
        ],
    }
