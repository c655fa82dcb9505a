"""Catalogue reads: ranked full-text search with filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import Count, F, QuerySet
from django.db.models.functions import TruncMonth

from catalogue.models import Asset, Entry
from catalogue.services import SEARCH_CONFIG
from catalogue.text import fold

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


# --- Search over every image ----------------------------------------------------------------

# Relevance is computed for every match up to this many; beyond it the matches are listed
# newest first (ranking a very common term over a million rows is the slow case).
RANK_LIMIT = 20_000
SORTS = {
    "relevance": None,  # rank, then newest; newest when there is no query
    "newest": ("-generated_at", "-pk"),
    "score": (F("score").desc(nulls_last=True), "-generated_at", "-pk"),
    "cost": ("-cost", "-generated_at", "-pk"),
}
FACETS = ("status", "reason", "campaign", "model", "lora", "purpose", "rights", "month")


@dataclass(frozen=True)
class SearchFilters:
    """Every filter the catalogue takes; each combines with the text and the others."""

    statuses: tuple[str, ...] = ()
    verdict: str = ""
    reason: str = ""
    reviewer: str = ""
    campaign_id: object = None
    template_version_id: int | None = None
    recipe_id: int | None = None
    model_name: str = ""
    model_version: int | None = None
    lora_name: str = ""
    lora_version: int | None = None
    purpose: str = ""
    channel: str = ""
    rights: str = ""
    published: bool | None = None
    generated_from: date | None = None
    generated_until: date | None = None
    month: date | None = None  # first day of the month
    approved_from: date | None = None
    approved_until: date | None = None
    score_min: float | None = None
    score_max: float | None = None
    cost_min: Decimal | None = None
    cost_max: Decimal | None = None


@dataclass
class Facet:
    value: str
    label: str
    count: int


@dataclass
class SearchResults:
    entries: list  # one page of Entry, with .rank when ranked
    total: int
    page: int
    pages: int
    per_page: int
    ranked: bool
    facets: dict[str, list[Facet]] = field(default_factory=dict)


def search_query(text: str) -> SearchQuery | None:
    """The web-search query for both the English stems and the words as written."""
    folded = fold((text or "").strip())
    if not folded:
        return None
    return SearchQuery(folded, search_type="websearch", config="english") | SearchQuery(
        folded, search_type="websearch", config="simple"
    )


def _day_end(day: date):
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _day_start(day: date):
    return datetime.combine(day, time.min, tzinfo=UTC)


def entries_filtered(*, query: str = "", filters: SearchFilters = SearchFilters()) -> QuerySet:
    entries = Entry.objects.all()
    f = filters
    if f.statuses:
        entries = entries.filter(status__in=f.statuses)
    if f.verdict:
        entries = entries.filter(verdict=f.verdict)
    if f.reason:
        entries = entries.filter(reason_codes__contains=[f.reason])
    if f.reviewer:
        entries = entries.filter(reviewer=f.reviewer)
    if f.campaign_id:
        entries = entries.filter(campaign_id=f.campaign_id)
    if f.template_version_id:
        entries = entries.filter(template_version_id=f.template_version_id)
    if f.recipe_id:
        entries = entries.filter(recipe_id=f.recipe_id)
    if f.model_name:
        entries = entries.filter(model_name=f.model_name)
        if f.model_version is not None:
            entries = entries.filter(model_version=f.model_version)
    if f.lora_name:
        if f.lora_version is not None:
            entries = entries.filter(loras__contains=[f"{f.lora_name}:{f.lora_version}"])
        else:
            entries = entries.filter(lora_names__contains=[f.lora_name])
    if f.purpose:
        entries = entries.filter(purpose=f.purpose)
    if f.channel:
        entries = entries.filter(channel=f.channel)
    if f.rights:
        entries = entries.filter(rights=f.rights)
    if f.published is not None:
        entries = entries.filter(published=f.published)
    if f.month:
        nxt = (f.month.replace(day=28) + timedelta(days=4)).replace(day=1)
        entries = entries.filter(
            generated_at__gte=_day_start(f.month), generated_at__lt=_day_start(nxt)
        )
    if f.generated_from:
        entries = entries.filter(generated_at__gte=_day_start(f.generated_from))
    if f.generated_until:
        entries = entries.filter(generated_at__lt=_day_end(f.generated_until))
    if f.approved_from:
        entries = entries.filter(approved_at__gte=_day_start(f.approved_from))
    if f.approved_until:
        entries = entries.filter(approved_at__lt=_day_end(f.approved_until))
    if f.score_min is not None:
        entries = entries.filter(score__gte=f.score_min)
    if f.score_max is not None:
        entries = entries.filter(score__lte=f.score_max)
    if f.cost_min is not None:
        entries = entries.filter(cost__gte=f.cost_min)
    if f.cost_max is not None:
        entries = entries.filter(cost__lte=f.cost_max)
    search = search_query(query)
    if search is not None:
        entries = entries.filter(search_vector=search)
    return entries


def entry_search(
    *,
    query: str = "",
    filters: SearchFilters = SearchFilters(),
    sort: str = "relevance",
    page: int = 1,
    per_page: int = 48,
    facets: bool = True,
) -> SearchResults:
    """One page of entries matching the text and filters, the total, and facet counts for
    the same set. Only one page of rows is loaded into Python."""
    if sort not in SORTS:
        raise ValueError(f"sort: must be one of {', '.join(SORTS)}")
    matching = entries_filtered(query=query, filters=filters)
    total = matching.count()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    search = search_query(query)
    ranked = sort == "relevance" and search is not None and total <= RANK_LIMIT
    ordered = matching
    if ranked:
        # Normalisation 32 maps a rank to rank / (rank + 1): 0..1, shown as a match score.
        ordered = ordered.annotate(
            rank=SearchRank(F("search_vector"), search, normalization=32)
        ).order_by("-rank", "-generated_at", "-pk")
    else:
        ordered = ordered.order_by(*(SORTS[sort] or SORTS["newest"]))
    start = (page - 1) * per_page
    rows = list(ordered.select_related("campaign", "item__asset")[start : start + per_page])
    return SearchResults(
        entries=rows,
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        ranked=ranked,
        facets=entry_facets(matching) if facets else {},
    )


def _counts(entries: QuerySet, column: str) -> list[tuple]:
    return list(
        entries.order_by().values_list(column).annotate(n=Count("pk")).order_by("-n", column)
    )


def _unnested(entries: QuerySet, column: str) -> list[tuple]:
    """Counts per element of an array column, for the entries of a queryset (one query)."""
    inner, params = entries.order_by().values("pk").query.sql_with_params()
    sql = (
        f"SELECT value, COUNT(*) AS n FROM catalogue_entry e, unnest(e.{column}) AS value "
        f"WHERE e.item_id IN ({inner}) GROUP BY value ORDER BY n DESC, value"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def entry_facets(entries: QuerySet) -> dict[str, list[Facet]]:
    """Counts for the facets, over exactly the entries given (the current query and filters)."""
    from generation.models import Campaign, Item
    from review.vocabulary import reason_label

    statuses = dict(Item.Status.choices)
    facets = {
        "status": [Facet(v, statuses.get(v, v), n) for v, n in _counts(entries, "status")],
        "reason": [Facet(v, reason_label(v), n) for v, n in _unnested(entries, "reason_codes")],
        "lora": [Facet(v, v.replace(":", " v"), n) for v, n in _unnested(entries, "loras")],
        "purpose": [Facet(v, v.title(), n) for v, n in _counts(entries, "purpose") if v],
        "rights": [Facet(v, v, n) for v, n in _counts(entries, "rights") if v],
    }
    campaigns = _counts(entries, "campaign_id")
    names = dict(
        Campaign.objects.filter(pk__in=[pk for pk, _ in campaigns]).values_list("pk", "name")
    )
    facets["campaign"] = [Facet(str(pk), names.get(pk, str(pk)), n) for pk, n in campaigns]
    models = (
        entries.order_by()
        .values_list("model_name", "model_version")
        .annotate(n=Count("pk"))
        .order_by("-n", "model_name", "model_version")
    )
    facets["model"] = [
        Facet(f"{name}:{version}", f"{name} v{version}", n) for name, version, n in models
    ]
    months = (
        entries.order_by()
        .filter(generated_at__isnull=False)
        .annotate(m=TruncMonth("generated_at", tzinfo=UTC))
        .values_list("m")
        .annotate(n=Count("pk"))
        .order_by("-m")
    )
    facets["month"] = [Facet(m.strftime("%Y-%m"), m.strftime("%B %Y"), n) for m, n in months]
    return {name: facets[name] for name in FACETS}
