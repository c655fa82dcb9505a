"""Generation reads: campaigns with their progress counts, and the campaign page's items."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from generation.models import Campaign, CostEntry, Item, PromptTemplate, PromptTemplateVersion
from studio.errors import InputError

# Items a worker still has to touch; a campaign with none of these needs no live refresh.
WORKING_STATUSES = (Item.Status.QUEUED, Item.Status.RUNNING, Item.Status.SCORING)


# Row columns that say which product an image is for, best first: an id (the sample CSVs use
# sku, asset_id and post_id; names repeat across a product's colours) and a name for people.
# A row with none of them is named by its first non-empty value.
PRODUCT_ID_COLUMNS = ("sku", "asset_id", "asset", "post_id", "id")
PRODUCT_NAME_COLUMNS = ("name", "product", "title", "subject")


@dataclass(frozen=True)
class Progress:
    """Item counts per status. ``campaign_status`` (when known) lets ``state`` tell a running
    campaign that only waits for reviewers from one that still generates."""

    counts: dict[str, int]
    campaign_status: str = ""
    pause_reason: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(status, 0) for status in Item.FINAL_STATUSES)

    @property
    def working(self) -> int:
        return sum(self.counts.get(status, 0) for status in WORKING_STATUSES)

    @property
    def cancelled(self) -> int:
        return self.counts.get(Item.Status.CANCELLED, 0)

    @property
    def planned(self) -> int:
        """Items that were or will be generated: all but the cancelled ones."""
        return self.total - self.cancelled

    @property
    def finished(self) -> int:
        """Planned items that reached a final status (cancelled ones are counted apart)."""
        return self.done - self.cancelled

    @property
    def in_review(self) -> int:
        return self.counts.get(Item.Status.REVIEW, 0)

    @property
    def waiting_for_review(self) -> int:
        """Items in review when nothing else is left to do (0 while workers still have some)."""
        return 0 if self.working else self.in_review

    @property
    def percent(self) -> int:
        """Finished share of the planned items, rounded down: 100 only when all are."""
        return 100 * self.finished // self.planned if self.planned else 0

    @property
    def state(self) -> tuple[str, str]:
        """(css status, label) for the campaign's badge: its status, except that a running
        campaign whose only open work is review says that it waits for review."""
        if self.campaign_status == Campaign.Status.RUNNING and self.waiting_for_review:
            return Item.Status.REVIEW, "Waiting for review"
        if self.campaign_status == Campaign.Status.PAUSED and self.pause_reason == "budget":
            return self.campaign_status, "Paused: budget reached"
        try:
            return self.campaign_status, Campaign.Status(self.campaign_status).label
        except ValueError:
            return self.campaign_status, self.campaign_status

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        """(status, label, count) for every status, in pipeline order."""
        return [
            (status, label, self.counts.get(status, 0)) for status, label in Item.Status.choices
        ]

    @property
    def segments(self) -> list[tuple[str, str, int, float]]:
        """(status, label, count, percent of all items) for the statuses that have items."""
        total = self.total
        return [
            (status, label, count, round(100 * count / total, 2))
            for status, label, count in self.by_status
            if count
        ]


def campaigns_with_progress() -> QuerySet[Campaign]:
    """Campaigns, newest first, annotated with one ``n_<status>`` count per item status."""
    counts = {
        f"n_{status}": Count("items", filter=Q(items__status=status))
        for status in Item.Status.values
    }
    return (
        Campaign.objects.select_related("template_version__template", "recipe", "created_by")
        .annotate(**counts)
        .order_by("-created_at", "pk")  # Meta.ordering does not apply to GROUP BY queries
    )


def progress_of_annotated(campaigns: Iterable[Campaign]) -> list[tuple[Campaign, Progress]]:
    return [
        (
            c,
            Progress(
                {status: getattr(c, f"n_{status}") for status in Item.Status.values},
                campaign_status=c.status,
                pause_reason=c.pause_reason,
            ),
        )
        for c in campaigns
    ]


def campaign_progress(*, campaign: Campaign) -> Progress:
    rows = campaign.items.order_by().values_list("status").annotate(n=Count("pk"))
    return Progress(dict(rows), campaign_status=campaign.status, pause_reason=campaign.pause_reason)


def campaign_items(*, campaign: Campaign, status: str = "") -> QuerySet[Item]:
    """The campaign page's items in row order, optionally of one status (empty: all).

    Raises InputError for a status that does not exist."""
    items = campaign.items.select_related("quality", "asset", "review_task").order_by(
        "row_index", "variation", "channel", "created_at", "pk"
    )
    if not status:
        return items
    if status not in Item.Status.values:
        raise InputError("status", f"must be one of {', '.join(Item.Status.values)}")
    return items.filter(status=status)


def item_product(row: dict) -> str:
    """What a CSV row is about, for people: "SH-1001 · Aero Runner" from its id and name
    columns, else its first non-empty value."""
    if not isinstance(row, dict):
        return ""
    columns = {str(key).strip().lower(): str(value or "").strip() for key, value in row.items()}

    def first(names: tuple[str, ...]) -> str:
        return next((columns[name] for name in names if columns.get(name)), "")

    parts = [part for part in (first(PRODUCT_ID_COLUMNS), first(PRODUCT_NAME_COLUMNS)) if part]
    if parts:
        return " · ".join(dict.fromkeys(parts))
    return next((value for value in columns.values() if value), "")


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign as its status poll shows it: the campaign row (only the columns shown), its
    template version's label, its creator's username, its progress and what it spent."""

    campaign: Campaign
    template: str
    created_by: str | None
    progress: Progress
    spent: Decimal


def campaign_status(*, pk) -> CampaignStatus | None:
    """The campaign ``pk`` with its progress and cost in one statement, or None.

    Integrators poll this many times a second; the ORM's three statements (the campaign with
    its template and creator, the status counts, the ledger sum) cost several times this one,
    most of it building their SQL. Only the columns the poll shows are read."""
    from django.contrib.auth import get_user_model

    sql = f"""
        SELECT c.id, c.name, c.status, c.priority, c.pause_reason, c.pause_note,
               c.template_version_id, c.recipe_id, c.variations, c.width, c.height,
               c.channels, c.created_at, c.finished_at, c.created_by_id,
               t.name AS template_name, tv.version AS template_number,
               u.username AS created_by_name,
               (SELECT json_object_agg(s.status, s.n) FROM (
                   SELECT status, count(*) AS n FROM {Item._meta.db_table}
                   WHERE campaign_id = c.id GROUP BY status) AS s) AS status_counts,
               (SELECT coalesce(sum(amount), 0) FROM {CostEntry._meta.db_table}
                WHERE campaign_id = c.id) AS spent
        FROM {Campaign._meta.db_table} AS c
        JOIN {PromptTemplateVersion._meta.db_table} AS tv ON tv.id = c.template_version_id
        JOIN {PromptTemplate._meta.db_table} AS t ON t.id = tv.template_id
        LEFT JOIN {get_user_model()._meta.db_table} AS u ON u.id = c.created_by_id
        WHERE c.id = %s
    """
    found = list(Campaign.objects.raw(sql, [pk]))
    if not found:
        return None
    (campaign,) = found
    progress = Progress(
        campaign.status_counts or {},
        campaign_status=campaign.status,
        pause_reason=campaign.pause_reason,
    )
    return CampaignStatus(
        campaign=campaign,
        template=str(
            PromptTemplateVersion(
                template=PromptTemplate(name=campaign.template_name),
                version=campaign.template_number,
            )
        ),
        created_by=campaign.created_by_name,
        progress=progress,
        spent=Decimal(campaign.spent),
    )


def campaign_cost(*, campaign: Campaign) -> Decimal:
    """What the campaign spent: the sum of its ledger entries (every kind), unrounded."""
    return CostEntry.objects.filter(campaign=campaign).aggregate(total=Sum("amount"))[
        "total"
    ] or Decimal(0)


# What ledger totals may be grouped by: a name -> the CostEntry field(s) it reads.
COST_GROUPS = {
    "kind": ("kind",),
    "month": ("month",),
    "campaign": ("campaign_id",),
    "item": ("item_id",),
    "recipe": ("recipe_id",),
    "base_model": ("base_model_id",),
    "combination": ("base_model_id", "loras"),
    "template_version": ("template_version_id",),
    "user": ("user_id",),
    "unit": ("unit",),
}


def cost_totals(
    *,
    by: tuple[str, ...] | list[str] = (),
    month=None,
    since=None,
    until=None,
    campaign=None,
    kinds=None,
) -> list[dict]:
    """Ledger totals grouped by any of COST_GROUPS (``by=("campaign", "kind")``), each row
    the group's fields with ``amount`` (unrounded), ``quantity`` and ``entries``; optionally
    of one month (a date, first of month), a range of months, a campaign or some kinds.

    Raises InputError for an unknown group."""
    unknown = [name for name in by if name not in COST_GROUPS]
    if unknown:
        raise InputError("by", f"{', '.join(unknown)}: not one of {', '.join(COST_GROUPS)}")
    entries = CostEntry.objects.all()
    if month is not None:
        entries = entries.filter(month=month)
    if since is not None:
        entries = entries.filter(month__gte=since)
    if until is not None:
        entries = entries.filter(month__lte=until)
    if campaign is not None:
        entries = entries.filter(campaign=campaign)
    if kinds:
        entries = entries.filter(kind__in=list(kinds))
    fields = [f for name in by for f in COST_GROUPS[name]]
    rows = (
        entries.order_by()
        .values(*fields)
        .annotate(amount=Sum("amount"), quantity=Sum("quantity"), entries=Count("pk"))
        .order_by(*fields)
    )
    return list(rows)
