"""Catalogue search over the API: the page's form (same filters, same messages) and selector."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Router, Schema

from catalogue.forms import CatalogueSearchForm
from catalogue.selectors import entry_search
from studio.api.core import form_errors, problem, require, scoped

router = Router(tags=["catalogue"])
PER_PAGE = 48


class FacetOut(Schema):
    value: str
    label: str
    count: int


class EntryOut(Schema):
    item: str
    campaign: str
    title: str
    status: str
    published: bool
    verdict: str
    reason_codes: list[str]
    reviewer: str
    model_name: str
    model_version: int
    loras: list[str]
    purpose: str
    channel: str
    rights: str
    rights_until: date | None
    tags: list[str]
    score: float | None
    generated_at: datetime | None
    image_url: str
    rank: float | None = None


class SearchOut(Schema):
    total: int
    page: int
    pages: int
    per_page: int
    ranked: bool
    next_page: int | None
    items: list[EntryOut]
    facets: dict[str, list[FacetOut]]


def _entry(e) -> dict:
    return {
        "item": str(e.item_id),
        "campaign": str(e.campaign_id),
        "title": e.title,
        "status": e.status,
        "published": e.published,
        "verdict": e.verdict,
        "reason_codes": list(e.reason_codes or []),
        "reviewer": e.reviewer,
        "model_name": e.model_name,
        "model_version": e.model_version,
        "loras": list(e.loras or []),
        "purpose": e.purpose,
        "channel": e.channel,
        "rights": e.rights,
        "rights_until": e.rights_until,
        "tags": list(e.tag_names or []),
        "score": e.score,
        "generated_at": e.generated_at,
        "image_url": f"/api/v1/items/{e.item_id}/image",
        "rank": getattr(e, "rank", None),
    }


@router.get(
    "/catalogue/search",
    response={200: SearchOut},
    summary="Search the catalogue (the page's query parameters: q, status, reason, campaign, "
    "model, lora, purpose, rights, sort, page, …)",
    auth=scoped("catalogue:read"),
)
def search(request):
    require(request, "catalogue:read")
    form = CatalogueSearchForm(request.GET)
    if not form.is_valid():
        return problem(422, "the search is not valid", errors=form_errors(form, where="query"))
    results = entry_search(**form.search_kwargs(), per_page=PER_PAGE)
    return {
        "total": results.total,
        "page": results.page,
        "pages": results.pages,
        "per_page": results.per_page,
        "ranked": results.ranked,
        "next_page": results.page + 1 if results.page < results.pages else None,
        "items": [_entry(e) for e in results.entries],
        "facets": {
            name: [{"value": f.value, "label": f.label, "count": f.count} for f in values]
            for name, values in results.facets.items()
        },
    }
