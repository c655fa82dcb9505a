"""Generation reads: campaigns with their progress counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from generation.models import Campaign, Item

# Items a worker still has to touch; a campaign with none of these needs no live refresh.
WORKING_STATUSES = (Item.Status.QUEUED, Item.Status.RUNNING, Item.Status.SCORING)


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int]

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
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

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
        (c, Progress({status: getattr(c, f"n_{status}") for status in Item.Status.values}))
        for c in campaigns
    ]


def campaign_progress(*, campaign: Campaign) -> Progress:
    rows = campaign.items.order_by().values_list("status").annotate(n=Count("pk"))
    return Progress(dict(rows))


def campaign_cost(*, campaign: Campaign) -> Decimal:
    return campaign.items.aggregate(total=Sum("cost"))["total"] or Decimal(0)
