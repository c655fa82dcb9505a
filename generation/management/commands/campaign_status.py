from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.costs import money
from generation.models import Campaign
from generation.selectors import campaign_cost, campaign_progress
from generation.services import campaign_spend


class Command(BaseCommand):
    help = "Print a campaign's item counts by status, its cost and its budget."

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
        spend = campaign_spend(campaign=campaign)
        if opts["json"]:
            payload = {
                "id": str(campaign.pk),
                "name": campaign.name,
                "status": campaign.status,
                "total": progress.total,
                "done": progress.done,
                "counts": counts,
                "cost": str(cost),
                "in_flight": str(spend.in_flight),
                "budget_cap": None if campaign.budget_cap is None else str(campaign.budget_cap),
                "pause_reason": campaign.pause_reason,
                "pause_note": campaign.pause_note,
            }
            self.stdout.write(json.dumps(payload))
            return
        state = campaign.status
        if campaign.paused_for_budget:
            state = "paused: budget reached"
        self.stdout.write(f"{campaign.name} ({state}): {progress.done}/{progress.total} done")
        if campaign.pause_note:
            self.stdout.write(f"  {campaign.pause_note}")
        for status, count in counts.items():
            self.stdout.write(f"  {status:10} {count}")
        self.stdout.write(f"  cost       {money(cost, 4)}")
        if campaign.budget_cap is not None:
            self.stdout.write(
                f"  cap        {money(campaign.budget_cap)} ({spend.percent:.0f}% used, "
                f"{money(spend.in_flight, 4)} in flight)"
            )
