from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from catalogue.selectors import asset_search


class Command(BaseCommand):
    help = "Full-text search of the catalogue (websearch syntax: quotes, OR, -word)."

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--campaign", help="Only this campaign id.")
        parser.add_argument("--status", choices=["published", "withdrawn"])
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--json", action="store_true", help="One JSON object per asset.")

    def handle(self, *args, query, **opts):
        assets = asset_search(
            query=query, campaign_id=opts["campaign"], status=opts["status"], limit=opts["limit"]
        )
        for asset in assets:
            if opts["json"]:
                self.stdout.write(
                    json.dumps(
                        {
                            "id": str(asset.pk),
                            "title": asset.title,
                            "prompt": asset.prompt,
                            "campaign": str(asset.campaign_id),
                            "status": asset.status,
                            "image": asset.image.name,
                            "rank": round(getattr(asset, "rank", 0.0), 4),
                        }
                    )
                )
            else:
                self.stdout.write(f"{asset.pk}  {asset.title}  [{asset.campaign.name}]")
