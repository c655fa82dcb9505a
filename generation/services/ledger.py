"""The cost ledger: every cost is a CostEntry, written where it is spent.

Generation records compute and API charges when an image is made, review records labour
when a reviewer decides (review.costs), the catalogue records storage when it publishes
(catalogue.costs); all through ``cost_record``. Each entry is attributed to its item,
campaign, recipe, base model, LoRA and template versions and month, so reports only read.

Recording is idempotent by ``key``: the same key twice writes one entry. It runs under a
row lock on the campaign (as reserving work does, generation.services.budgets), keeps
``Item.cost`` equal to the sum of the item's entries and checks the campaign's and the
month's budget, which may pause the campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.costs import Charge, exact
from generation.models import Campaign, CostEntry, Item
from studio.errors import InputError


def month_of(moment: datetime | date | None = None) -> date:
    """The first day of the month a moment falls in (in settings.TIME_ZONE)."""
    if moment is None:
        moment = timezone.now()
    if isinstance(moment, datetime):
        moment = timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    return moment.replace(day=1)


@dataclass(frozen=True)
class Attribution:
    """What an entry belongs to."""

    item_id: object = None
    campaign_id: object = None
    recipe_id: int | None = None
    base_model_id: int | None = None
    template_version_id: int | None = None
    lora_versions: tuple[int, ...] = ()
    loras: tuple[str, ...] = ()


def item_attribution(item_id) -> Attribution:
    row = (
        Item.objects.filter(pk=item_id)
        .values(
            "campaign_id",
            "recipe_id",
            "campaign__recipe_id",
            "base_model_id",
            "template_version_id",
            "campaign__template_version_id",
            "loras",
        )
        .first()
    )
    if row is None:
        raise InputError("item", f"no item with id {item_id}")
    loras = sorted(
        row["loras"] or [], key=lambda lora: (lora.get("name", ""), lora.get("version", 0))
    )
    return Attribution(
        item_id=item_id,
        campaign_id=row["campaign_id"],
        recipe_id=row["recipe_id"] or row["campaign__recipe_id"],
        base_model_id=row["base_model_id"],
        template_version_id=row["template_version_id"] or row["campaign__template_version_id"],
        lora_versions=tuple(sorted(int(lora["id"]) for lora in loras if lora.get("id"))),
        loras=tuple(f"{lora['name']}:{lora['version']}" for lora in loras),
    )


def _campaign_attribution(campaign_id) -> Attribution:
    row = (
        Campaign.objects.filter(pk=campaign_id)
        .values("recipe_id", "recipe__base_model_id", "template_version_id")
        .first()
    )
    if row is None:
        raise InputError("campaign", f"no campaign with id {campaign_id}")
    return Attribution(
        campaign_id=campaign_id,
        recipe_id=row["recipe_id"],
        base_model_id=row["recipe__base_model_id"],
        template_version_id=row["template_version_id"],
    )


def _decimal(value, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise InputError(field, f"expected a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise InputError(field, f"must be a number at least 0, got {value!r}")
    return number


def cost_record(
    *,
    key: str,
    kind: str,
    quantity,
    unit: str,
    rate,
    amount=None,
    item_id=None,
    campaign_id=None,
    user=None,
    occurred_at: datetime | None = None,
    host: str = "",
    detail: dict | None = None,
) -> CostEntry | None:
    """Write one ledger entry (``amount`` defaults to ``quantity`` × ``rate``); returns it, or
    None when an entry with this ``key`` exists already (nothing is written twice).

    ``item_id`` attributes it to the item's campaign, recipe, base model, LoRA and template
    versions; without an item, ``campaign_id`` to the campaign's. The month is
    ``occurred_at``'s (default now).
    """
    if kind not in CostEntry.Kind.values:
        raise InputError("kind", f"must be one of {', '.join(CostEntry.Kind.values)}")
    entry = {
        "key": key,
        "kind": kind,
        "quantity": _decimal(quantity, "quantity"),
        "unit": unit,
        "rate": _decimal(rate, "rate"),
        "amount": None if amount is None else _decimal(amount, "amount"),
        "user": user,
        "occurred_at": occurred_at,
        "host": host,
        "detail": detail or {},
    }
    if item_id is not None:
        attribution = item_attribution(item_id)
    elif campaign_id is not None:
        attribution = _campaign_attribution(campaign_id)
    else:
        attribution = Attribution()
    written = _record(attribution, [entry])
    return written[0] if written else None


def item_charges_record(
    *, item: Item, charges: list[Charge], source: str, occurred_at=None, host: str = ""
) -> list[CostEntry]:
    """The charges of one generated image (generation.costs.image_charges), keyed by the item,
    ``source`` (e.g. "attempt-2") and the charge's name: the same attempt is recorded once."""
    entries = [
        {
            "key": f"item:{item.pk}:{source}:{charge.name}",
            "kind": charge.kind,
            "quantity": charge.quantity,
            "unit": charge.unit,
            "rate": charge.rate,
            "amount": charge.amount,
            "user": None,
            "occurred_at": occurred_at,
            "host": host,
            "detail": charge.detail | {"setting": charge.setting, "source": source},
        }
        for charge in charges
    ]
    return _record(item_attribution(item.pk), entries)


def _record(attribution: Attribution, entries: list[dict]) -> list[CostEntry]:
    from generation.services.budgets import budgets_after_spend

    now = timezone.now()
    written = []
    with transaction.atomic():
        if attribution.campaign_id is not None:
            # The same lock as reserving work: a spend and a claim of the campaign never
            # interleave, so the budget check below sees every claim and every spend.
            Campaign.objects.select_for_update().filter(pk=attribution.campaign_id).first()
        for values in entries:
            occurred = values["occurred_at"] or now
            amount = values["amount"]
            if amount is None:
                amount = values["quantity"] * values["rate"]
            row = CostEntry(
                key=values["key"][:200],
                kind=values["kind"],
                amount=exact(amount),
                currency=settings.STUDIO_CURRENCY,
                quantity=values["quantity"],
                unit=values["unit"],
                rate=values["rate"],
                occurred_at=occurred,
                month=month_of(occurred),
                item_id=attribution.item_id,
                campaign_id=attribution.campaign_id,
                recipe_id=attribution.recipe_id,
                base_model_id=attribution.base_model_id,
                template_version_id=attribution.template_version_id,
                lora_versions=list(attribution.lora_versions),
                loras=list(attribution.loras),
                user=values["user"],
                host=values["host"][:200],
                detail=values["detail"],
            )
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:
                if not CostEntry.objects.filter(key=row.key).exists():
                    raise
                continue  # recorded before: a job or a request that ran twice
            written.append(row)
        if written and attribution.item_id is not None:
            item_cost_refresh(item_ids=[attribution.item_id])
        if written and attribution.campaign_id is not None:
            budgets_after_spend(campaign_id=attribution.campaign_id)
    return written


def item_cost_refresh(*, item_ids) -> int:
    """Set Item.cost to the sum of each item's ledger entries."""
    total = (
        CostEntry.objects.filter(item_id=OuterRef("pk"))
        .order_by()
        .values("item_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=20, decimal_places=10))
    return Item.objects.filter(pk__in=list(item_ids)).update(
        cost=Coalesce(Subquery(total, output_field=DecimalField()), zero)
    )
