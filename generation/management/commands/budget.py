"""Budgets from the command line: a campaign's cap, a month's budget, and where spend stands.

    python manage.py budget set --campaign ID --cap AMOUNT [--resume]
    python manage.py budget set --month YYYY-MM --amount AMOUNT
    python manage.py budget clear --campaign ID | --month YYYY-MM
    python manage.py budget show [--month YYYY-MM] [--json]

Bad input exits with status 2 and a message naming the option.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from generation.costs import PLACES, money
from generation.models import Campaign, PauseReason
from generation.services import (
    budget_amount_check,
    campaign_budget_set,
    campaign_spend,
    month_budget_clear,
    month_budget_set,
    month_of,
    month_parse,
    month_spend,
)
from studio.errors import InputError

# The service's field -> the option that gave it.
OPTIONS = {"cap": "--cap", "amount": "--amount", "month": "--month", "budget": "--resume"}


def _fail(message: str):
    raise CommandError(message, returncode=2)


def _number(value: Decimal | None) -> str | None:
    """An exact amount as a JSON string ("12.5", never "1.25E+1"); None stays None."""
    if value is None:
        return None
    text = format(Decimal(value).quantize(PLACES), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _spend_json(spend) -> dict:
    return {
        "cap": _number(spend.cap),
        "spent": _number(spend.spent),
        "in_flight": _number(spend.in_flight),
        "remaining": _number(spend.remaining),
        "percent": None if spend.percent is None else round(spend.percent, 2),
        "reached": spend.reached,
    }


class Command(BaseCommand):
    help = "Set a campaign's cap or a month's budget, or show spend against them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="set|clear|show")
        set_ = actions.add_parser("set", help="Set a campaign's cap or a month's budget.")
        set_.add_argument("--campaign", help="A campaign id (with --cap).")
        set_.add_argument("--cap", help="The campaign's cap, e.g. 250.00.")
        set_.add_argument("--resume", action="store_true", help="Resume the paused campaign.")
        set_.add_argument("--month", help="A month, YYYY-MM (with --amount).")
        set_.add_argument("--amount", help="The month's budget, e.g. 5000.00.")
        clear = actions.add_parser("clear", help="Remove a campaign's cap or a month's budget.")
        clear.add_argument("--campaign", help="A campaign id.")
        clear.add_argument("--month", help="A month, YYYY-MM.")
        show = actions.add_parser("show", help="Spend against the month's budget and the caps.")
        show.add_argument("--month", help="YYYY-MM (default: this month).")
        show.add_argument("--json", action="store_true", help="One JSON object.")

    def handle(self, *args, action: str, **opts):
        try:
            getattr(self, f"_{action}")(opts)
        except InputError as exc:
            _fail("\n".join(f"{OPTIONS.get(e.field, e.field)}: {e.message}" for e in exc.errors))

    def _campaign(self, value: str) -> Campaign:
        try:
            return Campaign.objects.get(pk=value)
        except (Campaign.DoesNotExist, ValidationError, ValueError):
            _fail(f"--campaign: no campaign with id {value!r}")

    def _set(self, opts) -> None:
        campaign, month = opts.get("campaign"), opts.get("month")
        if bool(campaign) == bool(month):
            _fail(
                "--campaign / --month: give one of them (--campaign ID --cap AMOUNT or "
                "--month YYYY-MM --amount AMOUNT)"
            )
        if campaign:
            if opts.get("amount") is not None:
                _fail("--amount: goes with --month; a campaign takes --cap")
            if opts.get("cap") is None:
                _fail("--cap: required with --campaign")
            cap = budget_amount_check(opts["cap"], field="cap")
            found = self._campaign(campaign)
            self.stdout.write(campaign_budget_set(campaign=found, cap=cap, resume=opts["resume"]))
            return
        if opts.get("cap") is not None or opts["resume"]:
            _fail("--cap / --resume: go with --campaign; a month takes --amount")
        if opts.get("amount") is None:
            _fail("--amount: required with --month")
        first = month_parse(month, field="month")
        budget = month_budget_set(month=first, amount=opts["amount"])
        self.stdout.write(f"Budget for {budget.month:%Y-%m} set to {money(budget.amount)}.")

    def _clear(self, opts) -> None:
        campaign, month = opts.get("campaign"), opts.get("month")
        if bool(campaign) == bool(month):
            _fail("--campaign / --month: give one of them")
        if campaign:
            self.stdout.write(campaign_budget_set(campaign=self._campaign(campaign), cap=None))
            return
        first = month_parse(month, field="month")
        removed = month_budget_clear(month=first)
        self.stdout.write(f"Budget for {first:%Y-%m} {'removed' if removed else 'was not set'}.")

    def _show(self, opts) -> None:
        month = month_parse(opts["month"], field="month") if opts.get("month") else month_of()
        total = month_spend(month=month)
        campaigns = Campaign.objects.filter(
            Q(budget_cap__isnull=False)
            | Q(status=Campaign.Status.PAUSED, pause_reason=PauseReason.BUDGET)
        ).order_by("-created_at")
        rows = [(campaign, campaign_spend(campaign=campaign)) for campaign in campaigns]
        if opts["json"]:
            payload = {
                "currency": settings.STUDIO_CURRENCY,
                "month": f"{month:%Y-%m}",
                **{("budget" if k == "cap" else k): v for k, v in _spend_json(total).items()},
                "campaigns": [
                    {
                        "id": str(campaign.pk),
                        "name": campaign.name,
                        "status": campaign.status,
                        "pause_reason": campaign.pause_reason,
                        "pause_note": campaign.pause_note,
                        **_spend_json(spend),
                    }
                    for campaign, spend in rows
                ],
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"{month:%B %Y}")
        if total.cap is None:
            self.stdout.write("  budget     none")
        else:
            self.stdout.write(f"  budget     {money(total.cap)}")
        self.stdout.write(f"  spent      {money(total.spent)}")
        self.stdout.write(f"  in flight  {money(total.in_flight)}")
        if total.cap is not None:
            state = " — reached" if total.reached else ""
            self.stdout.write(
                f"  left       {money(total.remaining)} ({total.percent:.0f}% used{state})"
            )
        if not rows:
            self.stdout.write("No campaign has a cap.")
            return
        self.stdout.write("Campaigns:")
        for campaign, spend in rows:
            status = campaign.status
            if campaign.paused_for_budget:
                status = f"paused — {campaign.pause_note or 'budget reached'}"
            cap = (
                f"{money(spend.total)} of {money(spend.cap)} ({spend.percent:.0f}%)"
                if spend.cap is not None
                else f"{money(spend.total)}, no cap"
            )
            self.stdout.write(f"  {campaign.pk}  {campaign.name}  {cap}  {status}")
