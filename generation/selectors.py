"""Reads for campaigns and items."""

from __future__ import annotations

from django.db.models import Count, Sum

from generation.models import Campaign, Item


def campaign_progress(campaign: Campaign) -> dict:
    """Counts of items by status (every status present, zeros included), done and cost."""
    rows = (
        Item.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Count("pk"), cost=Sum("cost"))
    )
    counts = {status: 0 for status in Item.Status.values}
    cost = 0
    for row in rows:
        counts[row["status"]] = row["n"]
        cost += row["cost"] or 0
    total = sum(counts.values())
    done = sum(counts[s] for s in Item.FINAL_STATUSES)
    return {
        "id": str(campaign.pk),
        "name": campaign.name,
        "status": campaign.status,
        "total": total,
        "done": done,
        "counts": counts,
        "cost": str(cost),
    }
