from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import Campaign
from generation.selectors import campaign_cost, campaign_progress


class Command(BaseCommand):
    help = "Print a campaign's item counts by status."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, campaign_id, **opts):
        try:
            campaign = Campaign.objects.get(pk=campaign_id)
        except (Campaign.DoesNotExist, ValidationError):
            raise CommandError(
                f"campaign: no campaign with id {campaign_id!r}", returncode=2
            ) from None
        progress = campaign_progress(campaign=campaign)
        counts = {status: count for status, _label, count in progress.by_status}
        cost = campaign_cost(campaign=campaign)
        if opts["json"]:
            payload = {
                "id": str(campaign.pk),
                "name": campaign.name,
                "status": campaign.status,
                "total": progress.total,
                "done": progress.done,
                "counts": counts,
                "cost": str(cost),
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"{campaign.name} ({campaign.status}): {progress.done}/{progress.total} done"
        )
        for status, count in counts.items():
            self.stdout.write(f"  {status:10} {count}")
        self.stdout.write(f"  cost       {cost}")
