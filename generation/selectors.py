"""Generation reads: campaigns with their progress counts, and the campaign page's items."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from generation.models import Campaign, Item
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
            ),
        )
        for c in campaigns
    ]


def campaign_progress(*, campaign: Campaign) -> Progress:
    rows = campaign.items.order_by().values_list("status").annotate(n=Count("pk"))
    return Progress(dict(rows), campaign_status=campaign.status)


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


def campaign_cost(*, campaign: Campaign) -> Decimal:
    return campaign.items.aggregate(total=Sum("cost"))["total"] or Decimal(0)
