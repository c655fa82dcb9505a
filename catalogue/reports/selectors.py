"""The numbers behind the managers' reports.

Spend is read from the ledger (CostEntry, booked to a month); images and their outcome from
the catalogue's entries (one per item, whatever its status), counted in the month the item
was created. Acceptance counts every image of the period exactly once:

* auto-approved: approved with no reviewer's decision;
* approved by reviewers;
* rejected (automatically or by a reviewer);
* failed;
* in progress (queued, generating, scoring or in review) and cancelled, shown apart.

The acceptance rate is approved / (approved + rejected): failed images are a cost, not a
judgement, and are counted on their own. Cost per approved image is the period's spend over
its approved images. Money stays exact here; pages and CSV round it once (generation.costs.money).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet, Sum

from catalogue.models import CampaignValue, Entry
from generation.models import (
    Campaign,
    CostEntry,
    Item,
    MonthlyBudget,
    PromptTemplateVersion,
    Recipe,
)
from generation.services import month_of
from review.vocabulary import reason_label

ZERO = Decimal(0)
IN_PROGRESS = (Item.Status.QUEUED, Item.Status.RUNNING, Item.Status.SCORING, Item.Status.REVIEW)
# Fields of a CSV row that name one product (a SKU, a title) say nothing about which prompts
# work: a field is reported only if its values repeat across rows (not only across one row's
# variations), and has at most this many values.
FIELD_MAX_VALUES = 50
TREND_MONTHS = 12


@dataclass(frozen=True)
class Period:
    """What a report covers: one month (None: all time) and optionally one campaign."""

    month: date | None = None
    campaign_id: object = None

    @property
    def label(self) -> str:
        return self.month.strftime("%B %Y") if self.month else "All time"


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _entries(period: Period) -> QuerySet:
    entries = Entry.objects.all()
    if period.month:
        entries = entries.filter(
            item__created_at__gte=_start(period.month),
            item__created_at__lt=_start(_next_month(period.month)),
        )
    if period.campaign_id:
        entries = entries.filter(campaign_id=period.campaign_id)
    return entries


def _costs(period: Period) -> QuerySet:
    costs = CostEntry.objects.all()
    if period.month:
        costs = costs.filter(month=period.month)
    if period.campaign_id:
        costs = costs.filter(campaign_id=period.campaign_id)
    return costs


_OUTCOMES = {
    "auto_approved": Count("pk", filter=Q(status=Item.Status.APPROVED, reviewer="")),
    "review_approved": Count("pk", filter=Q(status=Item.Status.APPROVED) & ~Q(reviewer="")),
    "rejected": Count("pk", filter=Q(status=Item.Status.REJECTED)),
    "failed": Count("pk", filter=Q(status=Item.Status.FAILED)),
    "in_progress": Count("pk", filter=Q(status__in=IN_PROGRESS)),
    "cancelled": Count("pk", filter=Q(status=Item.Status.CANCELLED)),
    "images": Count("pk"),
}


def _rates(row: dict, cost: Decimal) -> dict:
    """Approved, the acceptance rate and cost per approved image, from outcome counts."""
    approved = row["auto_approved"] + row["review_approved"]
    judged = approved + row["rejected"]
    return {
        **row,
        "approved": approved,
        "acceptance": (approved / judged) if judged else None,
        "cost": cost,
        "cost_per_approved": (cost / approved) if approved else None,
    }


def _spend_by_kind(costs: QuerySet) -> dict[str, Decimal]:
    kinds = {kind: ZERO for kind in CostEntry.Kind.values}
    for kind, amount in costs.order_by().values_list("kind").annotate(s=Sum("amount")):
        kinds[kind] = amount or ZERO
    return kinds


def _review_hours(costs: QuerySet) -> float:
    seconds = costs.filter(kind=CostEntry.Kind.REVIEW).aggregate(s=Sum("quantity"))["s"]
    return float(seconds or 0) / 3600


# --- Overview -------------------------------------------------------------------------------


def report_overview(*, month: date | None = None) -> dict:
    """This month's spend against the budget, its images and their outcome, review hours, and
    the trend over the last months."""
    month = month or month_of()
    period = Period(month=month)
    costs = _costs(period)
    by_kind = _spend_by_kind(costs)
    spend = sum(by_kind.values(), ZERO)
    outcome = _rates(_entries(period).aggregate(**_OUTCOMES), spend)
    budget = MonthlyBudget.objects.filter(month=month).values_list("amount", flat=True).first()
    return {
        "month": month,
        "spend": spend,
        "spend_by_kind": by_kind,
        "budget": budget,
        "budget_used": float(spend / budget) if budget else None,
        "outcome": outcome,
        "review_hours": _review_hours(costs),
        "trend": report_trend(until=month),
        "roi_by_month": report_roi_by_month(until=month),
        "has_data": bool(outcome["images"] or spend),
    }


def _months_until(until: date, months: int) -> list[date]:
    """The first days of the last ``months`` months up to ``until``, oldest first."""
    firsts = [until]
    while len(firsts) < months:
        firsts.append((firsts[-1] - timedelta(days=1)).replace(day=1))
    return firsts[::-1]


def report_trend(*, until: date, months: int = TREND_MONTHS) -> list[dict]:
    """Spend, approved images and cost per approved image for each of the last ``months``
    months up to ``until``, oldest first (months without data included, as zeros)."""
    firsts = _months_until(until, months)
    start = _start(firsts[0])
    end = _start(_next_month(until))
    spend = dict(
        CostEntry.objects.filter(month__gte=firsts[0], month__lte=until)
        .order_by()
        .values_list("month")
        .annotate(s=Sum("amount"))
    )
    approved: dict[date, int] = defaultdict(int)
    judged: dict[date, int] = defaultdict(int)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (date_trunc('month', i.created_at AT TIME ZONE %s))::date AS m,
                   count(*) FILTER (WHERE e.status = 'approved'),
                   count(*) FILTER (WHERE e.status IN ('approved', 'rejected'))
            FROM catalogue_entry e JOIN generation_item i ON i.id = e.item_id
            WHERE i.created_at >= %s AND i.created_at < %s
            GROUP BY 1
            """,
            [settings.TIME_ZONE, start, end],
        )
        for m, n_approved, n_judged in cursor.fetchall():
            approved[m] = n_approved
            judged[m] = n_judged
    rows = []
    for first in firsts:
        cost = spend.get(first) or ZERO
        rows.append(
            {
                "month": first,
                "spend": cost,
                "approved": approved[first],
                "acceptance": (approved[first] / judged[first]) if judged[first] else None,
                "cost_per_approved": (cost / approved[first]) if approved[first] else None,
            }
        )
    return rows


# --- Campaigns ------------------------------------------------------------------------------


def report_campaigns(*, period: Period = Period()) -> list[dict]:
    """One row per campaign with images in the period or spend booked to it: outcomes,
    rejections by reason, cost by kind, cost per approved image, time to finish and ROI."""
    outcomes = {
        row.pop("campaign_id"): row
        for row in _entries(period).order_by().values("campaign_id").annotate(**_OUTCOMES)
    }
    costs: dict = defaultdict(lambda: {kind: ZERO for kind in CostEntry.Kind.values})
    for campaign_id, kind, amount in (
        _costs(period).order_by().values_list("campaign_id", "kind").annotate(s=Sum("amount"))
    ):
        costs[campaign_id][kind] = amount or ZERO
    reasons: dict = defaultdict(dict)
    for campaign_id, code, n in _reason_counts(_entries(period), "campaign_id"):
        reasons[campaign_id][code] = n
    ids = set(outcomes) | set(costs)
    campaigns = Campaign.objects.filter(pk__in=ids).select_related("template_version__template")
    values = dict(
        CampaignValue.objects.filter(campaign_id__in=ids).values_list(
            "campaign_id", "value_per_image"
        )
    )
    empty = dict.fromkeys(_OUTCOMES, 0)
    rows = []
    for campaign in campaigns:
        by_kind = costs.get(campaign.pk) or {kind: ZERO for kind in CostEntry.Kind.values}
        cost = sum(by_kind.values(), ZERO)
        row = _rates(dict(outcomes.get(campaign.pk, empty)), cost)
        value_per_image = values.get(campaign.pk)
        value = value_per_image * row["approved"] if value_per_image is not None else None
        finished = campaign.finished_at
        rows.append(
            {
                **row,
                "campaign": campaign,
                "campaign_id": campaign.pk,
                "name": campaign.name,
                "status": campaign.get_status_display(),
                "cost_by_kind": by_kind,
                "rejected_by_reason": dict(
                    sorted(reasons[campaign.pk].items(), key=lambda kv: (-kv[1], kv[0]))
                ),
                "hours_to_finish": (
                    (finished - campaign.created_at).total_seconds() / 3600 if finished else None
                ),
                "value_per_image": value_per_image,
                "value": value,
                "roi": _roi(value, cost),
            }
        )
    rows.sort(key=lambda r: (-r["cost"], r["name"]))
    return rows


def _roi(value: Decimal | None, cost: Decimal) -> float | None:
    """(value − cost) / cost; None without a value or without any cost."""
    if value is None or not cost:
        return None
    return float((value - cost) / cost)


def _reason_counts(entries: QuerySet, group: str) -> list[tuple]:
    """(group, reason code, rejected images with it), for the rejected entries given."""
    inner, params = (
        entries.filter(status=Item.Status.REJECTED)
        .order_by()
        .values(group, "reason_codes")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.{group}, code, count(*) FROM ({inner}) AS r, unnest(r.reason_codes) code "
            "GROUP BY 1, 2",
            params,
        )
        return cursor.fetchall()


def report_roi_by_month(*, until: date, months: int = TREND_MONTHS) -> list[dict]:
    """ROI per month over every campaign with a value set: approved images × their campaign's
    value per image, against the month's spend on those campaigns."""
    rows = []
    valued = dict(CampaignValue.objects.values_list("campaign_id", "value_per_image"))
    for month in _months_until(until, months):
        period = Period(month=month)
        approved = dict(
            _entries(period)
            .filter(status=Item.Status.APPROVED, campaign_id__in=list(valued))
            .order_by()
            .values_list("campaign_id")
            .annotate(n=Count("pk"))
        )
        value = sum((valued[c] * n for c, n in approved.items()), ZERO)
        cost = (
            _costs(period).filter(campaign_id__in=list(valued)).aggregate(s=Sum("amount"))["s"]
            or ZERO
        )
        rows.append({"month": month, "value": value, "cost": cost, "roi": _roi(value, cost)})
    return rows


# --- Recipes and model + LoRA combinations ---------------------------------------------------


def report_combinations(
    *, period: Period = Period(), bar: float = 0.7, min_images: int = 10
) -> dict:
    """Per recipe and per base model + LoRA versions: acceptance, mean quality score, cost per
    approved image and seconds per image; and the cheapest combination whose acceptance
    reaches ``bar`` over at least ``min_images`` judged images."""
    entries = _entries(period)
    extra = {"mean_score": Avg("score"), "seconds": Avg("item__duration_s"), "spent": Sum("cost")}
    recipes = []
    names = {
        pk: f"{name} v{version}"
        for pk, name, version in Recipe.objects.values_list("pk", "name", "version")
    }
    for row in (
        entries.exclude(recipe_id=None)
        .order_by()
        .values("recipe_id")
        .annotate(**_OUTCOMES, **extra)
    ):
        recipes.append(_combination_row(row, label=names.get(row["recipe_id"], "?")))
    combinations = []
    for row in (
        entries.order_by()
        .values("model_name", "model_version", "loras")
        .annotate(**_OUTCOMES, **extra)
    ):
        loras = " + ".join(lora.replace(":", " v") for lora in sorted(row["loras"])) or "no LoRA"
        label = f"{row['model_name']} v{row['model_version']} · {loras}"
        combinations.append(_combination_row(row, label=label))
    for rows in (recipes, combinations):
        rows.sort(key=lambda r: (r["cost_per_approved"] is None, r["cost_per_approved"] or 0))
    eligible = [
        r
        for r in combinations
        if r["judged"] >= min_images
        and r["acceptance"] is not None
        and r["acceptance"] >= bar
        and r["cost_per_approved"] is not None
    ]
    best = min(eligible, key=lambda r: (r["cost_per_approved"], -r["acceptance"]), default=None)
    return {
        "recipes": recipes,
        "combinations": combinations,
        "bar": bar,
        "min_images": min_images,
        "recommendation": best,
        "considered": len(eligible),
    }


def _combination_row(row: dict, *, label: str) -> dict:
    spent = row.pop("spent") or ZERO
    result = _rates(row, spent)
    result["judged"] = result["approved"] + result["rejected"]
    result["label"] = label
    return result


# --- Prompts --------------------------------------------------------------------------------


def report_prompts(*, period: Period = Period(), min_images: int = 5) -> dict:
    """Which prompts give usable images: acceptance and top reject reasons per template
    version, and per CSV field value (``material=leather``), worst first."""
    entries = _entries(period)
    versions = {
        v.pk: f"{v.template.name} v{v.version}"
        for v in PromptTemplateVersion.objects.select_related("template")
    }
    reasons: dict = defaultdict(dict)
    for version_id, code, n in _reason_counts(entries, "template_version_id"):
        reasons[version_id][code] = n
    templates = []
    for row in (
        entries.order_by().values("template_version_id").annotate(**_OUTCOMES, spent=Sum("cost"))
    ):
        version_id = row.pop("template_version_id")
        result = _combination_row(row, label=versions.get(version_id, "(deleted template)"))
        result["top_reasons"] = _top(reasons[version_id])
        templates.append(result)
    templates.sort(key=lambda r: (r["acceptance"] is None, r["acceptance"] or 0))
    return {
        "templates": templates,
        "fields": _field_values(entries, min_images=min_images),
        "min_images": min_images,
    }


def _top(counts: dict[str, int], n: int = 3) -> list[dict]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [{"code": code, "label": reason_label(code), "count": c} for code, c in ordered]


_FIELDS_SQL = """
WITH e AS ({inner}),
kv AS (
    SELECT kv.key, left(kv.value, 100) AS value, ce.status, ce.reason_codes,
        i.campaign_id::text || ':' || i.row_index AS csv_row
    FROM e JOIN catalogue_entry ce ON ce.item_id = e.item_id
    JOIN generation_item i ON i.id = e.item_id,
    jsonb_each_text(i.row_data) AS kv
    WHERE kv.value <> ''
),
keys AS (
    SELECT key FROM kv GROUP BY key
    HAVING count(DISTINCT value) <= %s AND count(DISTINCT value) < count(DISTINCT csv_row)
),
grouped AS (
    SELECT kv.key, kv.value,
        count(*) FILTER (WHERE status = 'approved') AS approved,
        count(*) FILTER (WHERE status = 'rejected') AS rejected
    FROM kv JOIN keys USING (key) GROUP BY 1, 2
),
reasons AS (
    SELECT kv.key, kv.value, jsonb_object_agg(code, n) AS codes FROM (
        SELECT kv.key, kv.value, code, count(*) AS n
        FROM kv JOIN keys USING (key), unnest(kv.reason_codes) AS code
        WHERE kv.status = 'rejected' GROUP BY 1, 2, 3
    ) AS kv GROUP BY 1, 2
)
SELECT g.key, g.value, g.approved, g.rejected, coalesce(r.codes, '{{}}'::jsonb)
FROM grouped g LEFT JOIN reasons r USING (key, value)
"""


def _field_values(entries: QuerySet, *, min_images: int) -> list[dict]:
    """Acceptance per value of each CSV field whose values repeat (at most FIELD_MAX_VALUES
    of them), for fields with at least ``min_images`` judged images, worst first."""
    inner, params = entries.order_by().values("item_id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_FIELDS_SQL.format(inner=inner), [*params, FIELD_MAX_VALUES])
        rows = cursor.fetchall()
    out = []
    for key, value, approved, rejected, codes in rows:
        judged = approved + rejected
        if judged < min_images:
            continue
        out.append(
            {
                "field": key,
                "value": value,
                "label": f"{key}={value}",
                "approved": approved,
                "rejected": rejected,
                "judged": judged,
                "acceptance": approved / judged,
                # Django reads jsonb from a raw cursor as text.
                "top_reasons": _top(json.loads(codes) if isinstance(codes, str) else codes),
            }
        )
    out.sort(key=lambda r: (r["acceptance"], -r["judged"], r["label"]))
    return out


# --- Self-hosting or API --------------------------------------------------------------------


def report_hosting(*, month: date | None = None) -> dict:
    """The monthly cost of generating the ledger's actual volume on an own GPU or through an
    API, and the volume at which the two cost the same.

    Own GPU: fixed = price / amortisation months (+ its idle power, none here: a server that is
    switched off between campaigns); per image = seconds per image / 3600 × watts / 1000 ×
    price per kWh. API: per image = the configured price for the model. Break-even volume =
    fixed / (API per image − own GPU per image)."""
    month = month or month_of()
    images = CostEntry.objects.filter(
        month=month, kind__in=(CostEntry.Kind.COMPUTE, CostEntry.Kind.API)
    )
    volume = images.exclude(item_id=None).values("item_id").distinct().count()
    gpu = images.filter(unit="gpu_second")
    gpu_images = gpu.exclude(item_id=None).values("item_id").distinct().count()
    gpu_seconds = float(gpu.aggregate(s=Sum("quantity"))["s"] or 0)
    measured = gpu_images > 0
    seconds = gpu_seconds / gpu_images if measured else settings.STUDIO_SELFHOST_SECONDS_PER_IMAGE
    price = settings.STUDIO_SELFHOST_GPU_PRICE
    months = settings.STUDIO_SELFHOST_AMORTISATION_MONTHS
    watts = settings.STUDIO_SELFHOST_POWER_WATTS
    kwh = settings.STUDIO_SELFHOST_POWER_PRICE_KWH
    fixed = price / months
    per_image_own = Decimal(str(seconds)) / 3600 * watts / 1000 * kwh
    models = dict(
        Entry.objects.filter(
            item__created_at__gte=_start(month), item__created_at__lt=_start(_next_month(month))
        )
        .order_by()
        .values_list("model_name")
        .annotate(n=Count("pk"))
    )
    api_prices = settings.STUDIO_API_IMAGE_PRICES
    default_price = settings.STUDIO_API_IMAGE_PRICE
    total_models = sum(models.values())
    if total_models:
        per_image_api = (
            sum((api_prices.get(m, default_price) * n for m, n in models.items()), ZERO)
            / total_models
        )
    else:
        per_image_api = default_price
    own = fixed + per_image_own * volume
    api = per_image_api * volume
    margin = per_image_api - per_image_own
    break_even = (
        int((fixed / margin).to_integral_value(rounding=ROUND_CEILING)) if margin > 0 else None
    )
    return {
        "month": month,
        "volume": volume,
        "seconds_per_image": seconds,
        "seconds_measured": measured,
        "gpu_price": price,
        "amortisation_months": months,
        "watts": watts,
        "kwh_price": kwh,
        "fixed_monthly": fixed,
        "own_per_image": per_image_own,
        "api_per_image": per_image_api,
        "api_prices": {m: api_prices.get(m, default_price) for m in sorted(models)},
        "own_monthly": own,
        "api_monthly": api,
        "cheaper": None if not volume else ("own GPU" if own < api else "API"),
        "break_even": break_even,
    }
