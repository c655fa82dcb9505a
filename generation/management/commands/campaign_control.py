from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import Campaign, Priority
from generation.services import campaign_control, campaign_set_priority
from generation.services.control import ACTIONS
from studio.errors import InputError


class Command(BaseCommand):
    help = "Pause, resume or cancel a campaign, retry its failed items, or set its priority."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id")
        parser.add_argument("action", choices=[*ACTIONS, "priority"])
        parser.add_argument("value", nargs="?", choices=Priority.values, help="for priority")

    def handle(self, *args, campaign_id, action, value, **opts):
        try:
            campaign = Campaign.objects.get(pk=campaign_id)
        except (Campaign.DoesNotExist, ValidationError):
            raise CommandError(
                f"campaign: no campaign with id {campaign_id!r}", returncode=2
            ) from None
        try:
            if action == "priority":
                if not value:
                    raise InputError("priority", f"give one of {', '.join(Priority.values)}")
                campaign_set_priority(campaign=campaign, priority=value)
                message = f"{campaign} priority is now {value}."
            else:
                message = campaign_control(campaign=campaign, action=action)
        except InputError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(message)
