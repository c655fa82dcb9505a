"""Budgets: a cap per campaign and a budget per month, estimates, and the pause that holds.

Spend is what the ledger holds plus the work in flight (items a worker has claimed, at
their expected cost). Before a worker claims a batch, ``budgets_reserve`` locks the month's
budget row and the campaigns' rows and lets the claim go on only while spend is under the
cap, so two workers finishing at once overshoot a cap by at most one batch; a spend that
reaches a cap pauses the campaign with the reason "budget reached" (through
``campaign_transition``, the only writer of campaign status). Managers are told at 80 % and
100 % of a cap, once per threshold and cap, by e-mail and on the pages.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.costs import configured_image_cost, configured_seconds, exact, money
from generation.models import (
    BudgetAlert,
    Campaign,
    CostEntry,
    Item,
    MonthlyBudget,
    PauseReason,
    Recipe,
)
from generation.services.ledger import month_of
from generation.services.status import campaign_transition
from studio import webhooks
from studio.errors import InputError

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
GENERATION_KINDS = (CostEntry.Kind.COMPUTE, CostEntry.Kind.API)
THROUGHPUT_WINDOW = timedelta(days=7)
THROUGHPUT_MIN_IMAGES = 10
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_AMOUNT = re.compile(r"^-?\d{1,15}(\.\d{1,12})?$")


# --- Input ---------------------------------------------------------------------------------


def budget_amount_check(value, *, field: str) -> Decimal:
    """A budget amount: a positive number with at most two decimal places (the currency's
    pennies), at most STUDIO_BUDGET_MAX. Raises InputError naming ``field``."""
    text = "" if value is None else str(value).strip()
    if not _AMOUNT.match(text):
        raise InputError(field, f"expected an amount such as 250.00, got {value!r}")
    amount = Decimal(text)
    if amount <= 0:
        raise InputError(field, f"must be more than 0, got {text}")
    if amount != amount.quantize(Decimal("0.01")):
        raise InputError(
            field, f"at most two decimal places ({settings.STUDIO_CURRENCY}), got {text}"
        )
    if amount > settings.STUDIO_BUDGET_MAX:
        raise InputError(
            field,
            f"at most {money(settings.STUDIO_BUDGET_MAX)} (STUDIO_BUDGET_MAX), got {text}",
        )
    return amount.quantize(Decimal("0.01"))


def month_parse(value: str, *, field: str = "month") -> date:
    """``YYYY-MM`` -> the first day of that month; InputError naming ``field``."""
    match = _MONTH.match((value or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise InputError(field, f"expected a month as YYYY-MM, e.g. 2025-06, got {value!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


# --- Reading spend -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    """Spent (the ledger), in flight (claimed work at its expected cost) and the cap."""

    cap: Decimal | None
    spent: Decimal
    in_flight: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.spent + self.in_flight

    @property
    def remaining(self) -> Decimal | None:
        return None if self.cap is None else self.cap - self.total

    @property
    def percent(self) -> float | None:
        if self.cap is None or self.cap <= 0:
            return None
        return float(self.total * 100 / self.cap)

    @property
    def reached(self) -> bool:
        return self.cap is not None and self.total >= self.cap

    @property
    def level(self) -> int:
        """The highest threshold reached (0, 80 or 100)."""
        percent = self.percent or 0
        return max((t for t in THRESHOLDS if percent >= t), default=0)


@dataclass(frozen=True)
class Expected:
    """What one image of a recipe is expected to cost and take, and where that comes from."""

    per_image: Decimal
    seconds: float
    images: int  # how many past images the figures come from; 0: the configured rates

    @property
    def basis(self) -> str:
        if self.images:
            return f"the last {self.images} image{'s' if self.images != 1 else ''} of this recipe"
        return "the configured rates"


def expected_cost(
    *, recipe: Recipe, width: int | None = None, height: int | None = None
) -> Expected:
    """A recipe's expected cost per image: the mean generation cost (compute and API entries,
    retries included) of its last STUDIO_ESTIMATE_HISTORY images, else the configured rates;
    seconds the same way from ``Item.duration_s``."""
    limit = settings.STUDIO_ESTIMATE_HISTORY
    # The latest entries by time (an index scan), summed per item: an item's attempts and
    # its model fee lie close together, so a few times the limit covers ``limit`` items.
    recent = (
        CostEntry.objects.filter(recipe=recipe, kind__in=GENERATION_KINDS, item__isnull=False)
        .order_by("-occurred_at")
        .values_list("item_id", "amount")[: limit * 4]
    )
    totals: dict = {}
    for item_id, amount in recent:
        if item_id in totals or len(totals) < limit:
            totals[item_id] = totals.get(item_id, Decimal(0)) + amount
    per_item = list(totals.values())
    durations = list(
        Item.objects.filter(recipe=recipe, generated_at__isnull=False, duration_s__isnull=False)
        .order_by("-generated_at")
        .values_list("duration_s", flat=True)[:limit]
    )
    width, height = width or recipe.width, height or recipe.height
    if per_item:
        per_image = exact(sum(per_item, Decimal(0)) / len(per_item))
    else:
        per_image = configured_image_cost(
            base_model=recipe.base_model, steps=recipe.steps, width=width, height=height
        )
    if durations:
        seconds = sum(durations) / len(durations)
    else:
        seconds = configured_seconds(steps=recipe.steps, width=width, height=height)
    return Expected(per_image, seconds, len(per_item))


def _expected_total(items) -> Decimal:
    """Items at their recipe's expected cost per image."""
    counts = (
        items.annotate(the_recipe=Coalesce("recipe_id", "campaign__recipe_id"))
        .order_by()
        .values("the_recipe")
        .annotate(n=Count("pk"))
    )
    total = Decimal(0)
    for row in counts:
        recipe = Recipe.objects.select_related("base_model").get(pk=row["the_recipe"])
        total += expected_cost(recipe=recipe).per_image * row["n"]
    return total


def _in_flight(items) -> Decimal:
    """Claimed (generating) items at their expected cost."""
    return _expected_total(items.filter(status=Item.Status.RUNNING))


def campaign_to_finish(*, campaign: Campaign) -> Decimal:
    """What the campaign's queued items are expected to cost."""
    return _expected_total(Item.objects.filter(campaign=campaign, status=Item.Status.QUEUED))


def _spent(entries) -> Decimal:
    return entries.aggregate(total=Sum("amount"))["total"] or Decimal(0)


def campaign_spend(*, campaign: Campaign) -> Spend:
    return Spend(
        campaign.budget_cap,
        _spent(CostEntry.objects.filter(campaign=campaign)),
        _in_flight(Item.objects.filter(campaign=campaign)),
    )


def month_spend(*, month: date | None = None) -> Spend:
    """The workspace's spend booked to a month (default this one), against its budget; work in
    flight counts towards the current month only."""
    month = month or month_of()
    budget = MonthlyBudget.objects.filter(month=month).values_list("amount", flat=True).first()
    in_flight = _in_flight(Item.objects.all()) if month == month_of() else Decimal(0)
    return Spend(budget, _spent(CostEntry.objects.filter(month=month)), in_flight)


# --- Reserving and pausing ------------------------------------------------------------------


def _has_queued(campaign_id) -> bool:
    return Item.objects.filter(campaign_id=campaign_id, status=Item.Status.QUEUED).exists()


def _pause_for_budget(campaign: Campaign, note: str) -> bool:
    paused = campaign_transition(
        campaign_id=campaign.pk,
        action="pause",
        strict=False,
        reason=PauseReason.BUDGET,
        note=note[:300],
    )
    if paused:
        logger.info("campaign %s paused: %s", campaign.pk, note)
    return paused


def _campaign_note(spend: Spend) -> str:
    return (
        f"budget reached: {money(spend.total)} of the campaign cap of {money(spend.cap)} "
        f"({money(spend.spent)} spent, {money(spend.in_flight)} in flight)"
    )


def _month_note(month: date, spend: Spend) -> str:
    return (
        f"budget reached: {money(spend.total)} of the {month:%B %Y} budget of "
        f"{money(spend.cap)} ({money(spend.spent)} spent, {money(spend.in_flight)} in flight)"
    )


def budgets_reserve(*, item_ids) -> list:
    """Before a worker claims ``item_ids`` (inside the claim's transaction): lock this month's
    budget and the capped campaigns of the items, and pause those whose spend, with the work
    in flight, reached a cap. The claim that follows takes items of running campaigns only,
    so a batch starts only while spend is under every cap. Returns the paused campaigns' ids.

    Locks are taken in one order (month budget, then campaigns by id) by every caller."""
    month = month_of()
    budget = MonthlyBudget.objects.select_for_update().filter(month=month).first()
    campaign_ids = (
        Item.objects.filter(pk__in=item_ids, status=Item.Status.QUEUED)
        .order_by()
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    filters = Q(pk__in=list(campaign_ids), status=Campaign.Status.RUNNING)
    if budget is None:
        filters &= Q(budget_cap__isnull=False)
    campaigns = list(Campaign.objects.select_for_update().filter(filters).order_by("pk"))
    paused = []
    month_total = None
    for campaign in campaigns:
        if budget is not None:
            if month_total is None:
                month_total = month_spend(month=month)
            if month_total.reached:
                if _pause_for_budget(campaign, _month_note(month, month_total)):
                    paused.append(campaign.pk)
                continue
        if campaign.budget_cap is not None:
            spend = campaign_spend(campaign=campaign)
            if spend.reached and _pause_for_budget(campaign, _campaign_note(spend)):
                paused.append(campaign.pk)
    return paused


def budgets_after_spend(*, campaign_id) -> None:
    """After a spend was recorded (the campaign's row locked by the caller): tell managers of
    thresholds crossed, and pause the campaign if a cap is reached while it still has queued
    work (a campaign with nothing left to start is left to complete)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return
    month = month_of()
    budget_exists = MonthlyBudget.objects.filter(month=month).exists()
    if campaign.budget_cap is None and not budget_exists:
        return
    running = campaign.status == Campaign.Status.RUNNING
    if campaign.budget_cap is not None:
        spend = campaign_spend(campaign=campaign)
        _alerts(spend, campaign=campaign)
        if spend.reached and running and _has_queued(campaign.pk):
            running = not _pause_for_budget(campaign, _campaign_note(spend))
    if budget_exists:
        total = month_spend(month=month)
        _alerts(total, month=month)
        if total.reached and running and _has_queued(campaign.pk):
            _pause_for_budget(campaign, _month_note(month, total))


def budget_resume_check(*, campaign: Campaign) -> None:
    """Refuse (InputError "budget") to resume a campaign whose cap, or this month's budget, is
    still reached while it has queued work: raise the cap first."""
    if not _has_queued(campaign.pk):
        return
    if campaign.budget_cap is not None:
        spend = campaign_spend(campaign=campaign)
        if spend.reached:
            raise InputError(
                "budget",
                f"{_campaign_note(spend)}; raise the campaign's cap before resuming it",
            )
    total = month_spend()
    if total.reached:
        raise InputError(
            "budget", f"{_month_note(month_of(), total)}; raise this month's budget first"
        )


# --- Alerts --------------------------------------------------------------------------------


def _alerts(spend: Spend, *, campaign: Campaign | None = None, month: date | None = None) -> None:
    if spend.cap is None:
        return
    for threshold in THRESHOLDS:
        if spend.total * 100 < spend.cap * threshold:
            continue
        try:
            with transaction.atomic():
                alert = BudgetAlert.objects.create(
                    campaign=campaign,
                    month=month,
                    threshold=threshold,
                    cap=spend.cap,
                    spent=exact(spend.total),
                )
        except IntegrityError:
            continue  # told already, for this cap
        transaction.on_commit(lambda pk=alert.pk: budget_alert_send(alert_id=pk))
        webhooks.event_emit(
            "budget.threshold",
            {
                "budget": {
                    "scope": "campaign" if campaign is not None else "month",
                    "campaign": str(campaign.pk) if campaign is not None else None,
                    "month": f"{month:%Y-%m}" if month is not None else None,
                    "threshold": threshold,
                    "cap": str(spend.cap),
                    "spent": str(exact(spend.total)),
                    "currency": settings.STUDIO_CURRENCY,
                }
            },
        )


def alert_recipients() -> list[str]:
    from django.contrib.auth import get_user_model

    from studio.roles import ADMIN, MANAGER

    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(Q(groups__name__in=[MANAGER, ADMIN]) | Q(is_superuser=True))
    emails = list(
        dict.fromkeys(
            [*users.values_list("email", flat=True), *settings.STUDIO_BUDGET_ALERT_EMAILS]
        )
    )
    return emails


def alert_text(alert: BudgetAlert) -> tuple[str, str]:
    """(subject, body) of an alert's e-mail; also the banner's words."""
    if alert.campaign_id:
        what = f"campaign “{alert.campaign.name}”"
        where = f"its cap of {money(alert.cap)}"
    else:
        what = f"the {alert.month:%B %Y} budget"
        where = f"the budget of {money(alert.cap)}"
    reached = "reached" if alert.threshold >= 100 else f"{alert.threshold}% reached"
    subject = f"[Studio] Budget {reached}: {what}"
    lines = [
        f"Spend on {what} is {money(alert.spent)}, {alert.threshold}% or more of {where}.",
        "Spend counts the ledger's entries and the work in flight.",
    ]
    if alert.threshold >= 100:
        lines.append(
            "Work that would spend more is paused with the reason “budget reached”. "
            "Raise the cap and resume to go on (python manage.py budget set …)."
        )
    return subject, "\n".join(lines)


def budget_alert_send(*, alert_id) -> int:
    """E-mail one alert to the managers (after the commit that recorded it); a mail failure
    is logged, never raised into the worker."""
    from django.core.mail import send_mail

    alert = BudgetAlert.objects.select_related("campaign").filter(pk=alert_id).first()
    if alert is None:
        return 0
    recipients = alert_recipients()
    if not recipients:
        logger.info("budget alert %s: no manager has an e-mail address", alert_id)
        return 0
    subject, body = alert_text(alert)
    try:
        return send_mail(subject, body, None, recipients)
    except Exception:
        logger.exception("budget alert %s: sending the e-mail failed", alert_id)
        return 0


# --- Setting budgets -------------------------------------------------------------------------


def campaign_budget_set(*, campaign: Campaign, cap, user=None, resume: bool = False) -> str:
    """Set (or with ``cap=None`` remove) a campaign's cap; with ``resume``, resume it when it is
    paused. Returns what happened in words. InputError names "cap" for a bad amount."""
    from generation.services.control import campaign_resume

    amount = None if cap is None else budget_amount_check(cap, field="cap")
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).update(budget_cap=amount)
        campaign.refresh_from_db()
        logger.info("campaign %s: cap set to %s by %s", campaign.pk, amount, user or "a command")
        message = (
            f"{campaign}: cap set to {money(amount)}."
            if amount is not None
            else f"{campaign}: no cap."
        )
        if resume and campaign.status == Campaign.Status.PAUSED:
            campaign_resume(campaign=campaign)
            message += " Resumed."
    return message


def month_budget_set(*, month: date, amount, user=None) -> MonthlyBudget:
    value = budget_amount_check(amount, field="amount")
    budget, _ = MonthlyBudget.objects.update_or_create(
        month=month_of(month), defaults={"amount": value, "set_by": user}
    )
    return budget


def month_budget_clear(*, month: date) -> bool:
    return bool(MonthlyBudget.objects.filter(month=month_of(month)).delete()[0])


# --- Estimates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimateLine:
    recipe: Recipe
    images: int
    expected: Expected
    cost: Decimal
    seconds: float
    speed_basis: str


@dataclass
class Estimate:
    """What a planned campaign should cost and take, before anything is created."""

    lines: list[EstimateLine] = field(default_factory=list)
    cap: Decimal | None = None
    month: Spend | None = None  # this month's spend, with its budget (None: no budget)

    @property
    def images(self) -> int:
        return sum(line.images for line in self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def per_image(self) -> Decimal:
        return self.total / self.images if self.images else Decimal(0)

    @property
    def seconds(self) -> float:
        return sum(line.seconds for line in self.lines)

    @property
    def duration(self) -> str:
        return duration_words(self.seconds)

    @property
    def over_cap(self) -> bool:
        return self.cap is not None and self.total > self.cap

    @property
    def month_remaining(self) -> Decimal | None:
        return None if self.month is None else self.month.remaining

    @property
    def over_month(self) -> bool:
        return self.month is not None and self.total > self.month.remaining

    @property
    def over(self) -> bool:
        return self.over_cap or self.over_month

    def problems(self) -> list[str]:
        found = []
        if self.over_cap:
            found.append(
                f"the estimate of {money(self.total)} is over the campaign cap of {money(self.cap)}"
            )
        if self.over_month:
            left = money(max(self.month.remaining, Decimal(0)))
            found.append(
                f"the estimate of {money(self.total)} is over what is left of this month's "
                f"budget ({left} of {money(self.month.cap)})"
            )
        return found


def duration_words(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours / 24:.1f} days"


def _busy_rate(items) -> tuple[float, int] | None:
    """Images per second of busy time over recent items: the union of their [claimed,
    generated] intervals, so idle gaps between campaigns do not count."""
    since = timezone.now() - THROUGHPUT_WINDOW
    rows = list(
        items.filter(generated_at__gte=since, started_at__isnull=False)
        .order_by("-generated_at")
        .values_list("started_at", "generated_at")[:200]
    )
    if len(rows) < THROUGHPUT_MIN_IMAGES:
        return None
    busy, end = 0.0, None
    for start, stop in sorted(rows):
        if stop <= start:
            continue
        if end is None or start > end:
            busy += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            busy += (stop - end).total_seconds()
            end = stop
    if busy <= 0:
        return None
    return len(rows) / busy, len(rows)


def _speed(recipe: Recipe, expected: Expected) -> tuple[float, str]:
    """Seconds per image for the estimate, and where the figure comes from."""
    rate = _busy_rate(Item.objects.filter(recipe=recipe))
    if rate is not None:
        per_second, count = rate
        return 1 / per_second, f"recent throughput ({count} images: {per_second * 60:.1f}/min)"
    words = f"{expected.seconds:.3g} s per image on one worker"
    return expected.seconds, words if expected.images else f"{words} (configured)"


def campaign_estimate(*, plan, cap=None) -> Estimate:
    """The expected cost and time of a campaign plan (generation.services.campaign_plan), per
    recipe: images × expected cost per image, and images at the recent throughput; with the
    campaign's cap and what is left of this month's budget."""
    estimate = Estimate(cap=None if cap in (None, "") else Decimal(str(cap)))
    # Every cell of its variation matrix, per recipe (a recipe axis splits the images).
    for recipe, images, size in plan.recipe_images():
        expected = expected_cost(recipe=recipe, width=size[0], height=size[1])
        seconds, basis = _speed(recipe, expected)
        estimate.lines.append(
            EstimateLine(
                recipe, images, expected, expected.per_image * images, seconds * images, basis
            )
        )
    if MonthlyBudget.objects.filter(month=month_of()).exists():
        estimate.month = month_spend()
    return estimate


def campaign_budget_confirm(*, plan, cap=None, confirmed: bool = False) -> Estimate | None:
    """Before creating a campaign: raise InputError("budget") when its estimate is over its cap
    or this month's remaining budget and the user did not confirm. Returns the estimate when
    it was needed (a cap or a month budget), else None."""
    if cap is None and not MonthlyBudget.objects.filter(month=month_of()).exists():
        return None
    estimate = campaign_estimate(plan=plan, cap=cap)
    if estimate.over and not confirmed:
        problems = "; ".join(estimate.problems())
        raise InputError(
            "budget",
            problems[:1].upper()
            + problems[1:]
            + ". Confirm to create it anyway: it pauses itself when the budget is reached.",
        )
    return estimate


def budget_notices(*, limit: int = 5) -> list[dict]:
    """What the pages' banner says: this month's budget at 80 % or more, campaigns whose cap
    is at 80 % or more, and campaigns paused because their budget was reached."""
    notices = []
    month = month_of()
    budget = MonthlyBudget.objects.filter(month=month).first()
    if budget is not None:
        alert = (
            BudgetAlert.objects.filter(month=month, cap=budget.amount)
            .order_by("-threshold")
            .first()
        )
        if alert is not None:
            notices.append(
                {
                    "level": alert.threshold,
                    "text": f"{month:%B %Y}: {money(alert.spent)} of the {money(budget.amount)} "
                    f"budget ({alert.threshold}%{' — reached' if alert.threshold >= 100 else ''}).",
                    "campaign": None,
                }
            )
    paused = list(
        Campaign.objects.filter(status=Campaign.Status.PAUSED, pause_reason=PauseReason.BUDGET)
        .order_by("-created_at")
        .values("pk", "name", "pause_note")[:limit]
    )
    for row in paused:
        notices.append(
            {
                "level": 100,
                "text": f"{row['name']} is paused: {row['pause_note'] or 'budget reached'}.",
                "campaign": row["pk"],
            }
        )
    shown = {row["pk"] for row in paused}
    near = (
        BudgetAlert.objects.filter(
            campaign__status=Campaign.Status.RUNNING, cap=F("campaign__budget_cap")
        )
        .exclude(campaign_id__in=shown)
        .select_related("campaign")
        .order_by("campaign_id", "-threshold")
        .distinct("campaign_id")[:limit]
    )
    for alert in near:
        notices.append(
            {
                "level": alert.threshold,
                "text": f"{alert.campaign.name}: {alert.threshold}% of its "
                f"{money(alert.cap)} cap ({money(alert.spent)}).",
                "campaign": alert.campaign_id,
            }
        )
    return notices
