"""Catalogue reads: ranked full-text search with filters."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, QuerySet

from catalogue.models import Asset
from catalogue.services import SEARCH_CONFIG

# Ranking every match of a very common term is the slow case (DESIGN.md): rank at most this
# many of the newest matches.
RANK_CAP = 5000


def asset_search(
    *, query: str = "", campaign_id=None, status: str | None = None, limit: int = 50
) -> QuerySet[Asset]:
    assets = Asset.objects.select_related("campaign")
    if campaign_id:
        assets = assets.filter(campaign_id=campaign_id)
    if status:
        assets = assets.filter(status=status)
    query = (query or "").strip()
    if not query:
        return assets.order_by("-created_at")[:limit]
    search = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
    candidates = assets.filter(search_vector=search).order_by("-created_at").values("pk")[:RANK_CAP]
    return (
        Asset.objects.select_related("campaign")
        .filter(pk__in=candidates)
        .annotate(rank=SearchRank(F("search_vector"), search))
        .order_by("-rank", "-created_at")[:limit]
    )
