"""Catalogue reads: ranked full-text search with filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from catalogue.models import Asset, Entry
from catalogue.text import fold

# --- Search over every image ----------------------------------------------------------------

# Relevance is computed for every match up to this many; beyond it the matches are listed
# newest first (ranking a very common term over a million rows is the slow case).
RANK_LIMIT = 20_000
SORTS = {
    "relevance": None,  # rank, then newest; newest when there is no query
    "newest": (F("generated_at").desc(nulls_last=True), "-pk"),
    "score": (F("score").desc(nulls_last=True), F("generated_at").desc(nulls_last=True), "-pk"),
    "cost": ("-cost", F("generated_at").desc(nulls_last=True), "-pk"),
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
    # Rights that end within this many days from today (today included; not those already
    # expired), and rights already expired (True) or not (False).
    rights_expiring_days: int | None = None
    rights_expired: bool | None = None
    published: bool | None = None
    # Withdrawn assets leave the default view: "hide" them, "include" them, or "only" them.
    # A status of "withdrawn" among ``statuses`` asks for them too.
    withdrawn: str = "hide"
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
    """The entries matching the text and every filter, unordered and unsliced (what a search,
    its facets and a selection of "all its results" read)."""
    withdrawn = Asset.Status.WITHDRAWN
    entries = Entry.objects.all()
    f = filters
    statuses = [status for status in f.statuses if status != withdrawn]
    asks_withdrawn = len(statuses) < len(f.statuses)
    if statuses and asks_withdrawn:
        entries = entries.filter(Q(status__in=statuses) | Q(asset_status=withdrawn))
    elif statuses:
        entries = entries.filter(status__in=statuses)
    elif asks_withdrawn:
        entries = entries.filter(asset_status=withdrawn)
    if f.withdrawn == "only":
        entries = entries.filter(asset_status=withdrawn)
    elif f.withdrawn == "hide" and not asks_withdrawn:
        entries = entries.exclude(asset_status=withdrawn)
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
    today = timezone.localdate()
    if f.rights_expiring_days is not None:
        entries = entries.filter(
            rights_until__gte=today,
            rights_until__lte=today + timedelta(days=f.rights_expiring_days),
        )
    if f.rights_expired:
        entries = entries.filter(rights_until__lt=today)
    elif f.rights_expired is False:
        entries = entries.exclude(rights_until__lt=today)
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
    fields: tuple[str, ...] = (),
) -> SearchResults:
    """One page of entries matching the text and filters, the total, and facet counts for
    the same set. Only one page of rows is loaded into Python, each entry with its campaign
    and its item's asset (what a card shows). With ``fields``, each result is instead a dict
    of those columns (and ``rank``), which is all an API answer needs.

    With facets, one statement reads the matches once (a materialised set of the narrow
    columns the facets and the sort need) and returns the total, every facet and the page's
    ids; relevance order, when it applies, ranks the matches in a second statement."""
    if sort not in SORTS:
        raise ValueError(f"sort: must be one of {', '.join(SORTS)}")
    page = max(1, page)
    matching = entries_filtered(query=query, filters=filters)
    search = search_query(query)
    order = sort if sort != "relevance" else "newest"
    if facets:
        total, counts, ids = _one_pass(matching, order, (page - 1) * per_page, per_page)
    else:
        total, counts, ids = matching.count(), {}, None
    pages = max(1, -(-total // per_page))
    if page > pages:
        page, ids = pages, None
    start = (page - 1) * per_page
    ranked = sort == "relevance" and search is not None and total <= RANK_LIMIT
    ranks: dict = {}
    if ranked:
        # Normalisation 32 maps a rank to rank / (rank + 1): 0..1, shown as a match score.
        # Only the id and the sort keys are sorted, so the sort stays in memory.
        rows = (
            matching.annotate(rank=SearchRank(F("search_vector"), search, normalization=32))
            .order_by("-rank", *SORTS["newest"])
            .values_list("pk", "rank")[start : start + per_page]
        )
        ranks = dict(rows)
        ids = list(ranks)
    elif ids is None:
        ids = list(
            matching.order_by(*SORTS[order]).values_list("pk", flat=True)[start : start + per_page]
        )
    if fields:
        loaded = {
            row["item_id"]: row
            for row in Entry.objects.filter(pk__in=ids).values("item_id", *fields)
        }
        entries = [loaded[pk] for pk in ids if pk in loaded]
        for row in entries:
            row["rank"] = ranks.get(row["item_id"])
    else:
        loaded = _page_rows().in_bulk(ids)
        entries = [loaded[pk] for pk in ids if pk in loaded]
        for entry in entries:
            if ranked:
                entry.rank = ranks[entry.pk]
    return SearchResults(
        entries=entries,
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        ranked=ranked,
        facets=_facets(counts) if facets else {},
    )


def _page_rows() -> QuerySet:
    """The entries of a result page with what a card shows, less what it never does: the
    search vector, and the campaign's CSV (up to STUDIO_MAX_CSV_ROWS rows, once per card)."""
    return Entry.objects.select_related("campaign", "item__asset").defer(
        "search_vector", "campaign__csv_rows", "campaign__csv_columns"
    )


# The facets read only these columns of the matches, and the sort its own keys: a narrow
# materialised set stays in memory.
_NARROW = (
    "item_id",
    "status",
    "campaign_id",
    "model_name",
    "model_version",
    "purpose",
    "rights",
    "generated_at",
    "reason_codes",
    "loras",
)
_SORT_COLUMNS = {"newest": (), "score": ("score",), "cost": ("cost",)}
# Enough for the materialised matches of a common term at a million entries (PostgreSQL's
# default of 4 MB spills them to a temporary file); set for that one statement only.
SEARCH_WORK_MEM = "64MB"
_ORDER_SQL = {
    "newest": "generated_at DESC NULLS LAST, item_id DESC",
    "score": "score DESC NULLS LAST, generated_at DESC NULLS LAST, item_id DESC",
    "cost": "cost DESC, generated_at DESC NULLS LAST, item_id DESC",
}
_FACET_SQL = """
SELECT 'status', status::text, count(*) FROM m GROUP BY status
UNION ALL SELECT 'reason', v, count(*) FROM m, unnest(m.reason_codes) AS v GROUP BY v
UNION ALL SELECT 'lora', v, count(*) FROM m, unnest(m.loras) AS v GROUP BY v
UNION ALL SELECT 'purpose', purpose, count(*) FROM m WHERE purpose <> '' GROUP BY purpose
UNION ALL SELECT 'rights', rights, count(*) FROM m WHERE rights <> '' GROUP BY rights
UNION ALL SELECT 'campaign', campaign_id::text, count(*) FROM m GROUP BY campaign_id
UNION ALL SELECT 'model', model_name || ':' || model_version, count(*) FROM m
    GROUP BY model_name, model_version
UNION ALL SELECT 'month', to_char(date_trunc('month', generated_at AT TIME ZONE 'UTC'), 'YYYY-MM'),
    count(*) FROM m WHERE generated_at IS NOT NULL GROUP BY 2
"""


def _one_pass(entries: QuerySet, order: str, offset: int, limit: int):
    """Total, facet counts and one page of ids (in ``order``) for the entries, in one
    statement that reads the matching rows once."""
    columns = (*_NARROW, *_SORT_COLUMNS[order])
    inner, params = entries.order_by().values(*columns).query.sql_with_params()
    sql = (
        f"WITH m AS MATERIALIZED ({inner}) "
        f"{_FACET_SQL} "
        f"UNION ALL SELECT 'page', item_id::text, row_number() OVER (ORDER BY {_ORDER_SQL[order]}) "
        f"FROM (SELECT * FROM m ORDER BY {_ORDER_SQL[order]} LIMIT %s OFFSET %s) AS p"
    )
    counts: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    page: list[tuple[int, str]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{SEARCH_WORK_MEM}'")
        cursor.execute(sql, (*params, limit, offset))
        for facet, value, n in cursor.fetchall():
            if facet == "page":
                page.append((n, value))
            else:
                counts[facet].append((value, n))
    total = sum(n for _, n in counts["status"])
    pk = Entry._meta.pk.target_field.to_python
    return total, counts, [pk(value) for _, value in sorted(page)]


def _facets(counts: dict[str, list[tuple[str, int]]]) -> dict[str, list[Facet]]:
    from generation.models import Campaign, Item
    from review.vocabulary import reason_label

    statuses = dict(Item.Status.choices)

    def by_count(pairs):
        return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))

    names = dict(
        Campaign.objects.filter(pk__in=[pk for pk, _ in counts["campaign"]]).values_list(
            "pk", "name"
        )
    )
    names = {str(pk): name for pk, name in names.items()}
    facets = {
        "status": [Facet(v, statuses.get(v, v), n) for v, n in by_count(counts["status"])],
        "reason": [Facet(v, reason_label(v), n) for v, n in by_count(counts["reason"])],
        "lora": [Facet(v, v.replace(":", " v"), n) for v, n in by_count(counts["lora"])],
        "purpose": [Facet(v, v.title(), n) for v, n in by_count(counts["purpose"])],
        "rights": [Facet(v, v, n) for v, n in by_count(counts["rights"])],
        "campaign": [Facet(v, names.get(v, v), n) for v, n in by_count(counts["campaign"])],
        "model": [
            Facet(v, v.replace(":", " v"), n)
            for v, n in sorted(counts["model"], key=lambda p: (-p[1], *_model_key(p[0])))
        ],
        "month": [
            Facet(v, date.fromisoformat(f"{v}-01").strftime("%B %Y"), n)
            for v, n in sorted(counts["month"], reverse=True)
        ],
    }
    return {name: facets[name] for name in FACETS}


def _model_key(value: str) -> tuple[str, int]:
    name, _, version = value.rpartition(":")
    return name, int(version)


def entry_facets(entries: QuerySet) -> dict[str, list[Facet]]:
    """Counts for the facets, over exactly the entries given (the current query and filters)."""
    _, counts, _ = _one_pass(entries, "newest", 0, 0)
    return _facets(counts)
