"""Catalogue search over the API: the page's form (same filters, same messages) and selector.

An answer is kept in Redis under the catalogue's stamp (studio.freshness): whatever writes
entries moves it, so a kept answer is never older than the catalogue. Integrators repeat
their searches (a feed, a picker paging the same filters); a kept answer costs a tenth of a
search. Kept answers expire after SEARCH_KEEP_SECONDS even if nothing moved the stamp (a
change made outside the services, e.g. a restore, or a campaign renamed in the admin)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from django.http import HttpResponse
from django.utils import timezone
from ninja import Router
from ninja.responses import NinjaJSONEncoder

from catalogue.forms import CatalogueSearchForm
from catalogue.selectors import entry_search
from studio import freshness
from studio.api.core import Out, form_errors, problem, require, scoped

router = Router(tags=["catalogue"])
PER_PAGE = 48
SEARCH_KEEP_SECONDS = 300


class FacetOut(Out):
    value: str
    label: str
    count: int


class EntryOut(Out):
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


class SearchOut(Out):
    total: int
    page: int
    pages: int
    per_page: int
    ranked: bool
    next_page: int | None
    items: list[EntryOut]
    facets: dict[str, list[FacetOut]]


# The entry columns an answer shows (EntryOut): only these are read for a result page.
_COLUMNS = (
    "campaign_id",
    "title",
    "status",
    "published",
    "verdict",
    "reason_codes",
    "reviewer",
    "model_name",
    "model_version",
    "loras",
    "purpose",
    "channel",
    "rights",
    "rights_until",
    "tag_names",
    "score",
    "generated_at",
)


def _entry(e: dict) -> dict:
    return {
        "item": str(e["item_id"]),
        "campaign": str(e["campaign_id"]),
        "title": e["title"],
        "status": e["status"],
        "published": e["published"],
        "verdict": e["verdict"],
        "reason_codes": list(e["reason_codes"] or []),
        "reviewer": e["reviewer"],
        "model_name": e["model_name"],
        "model_version": e["model_version"],
        "loras": list(e["loras"] or []),
        "purpose": e["purpose"],
        "channel": e["channel"],
        "rights": e["rights"],
        "rights_until": e["rights_until"],
        "tags": list(e["tag_names"] or []),
        "score": e["score"],
        "generated_at": e["generated_at"],
        "image_url": f"/api/v1/items/{e['item_id']}/image",
        "rank": e["rank"],
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
    search_kwargs = form.search_kwargs()
    key = _kept_key(search_kwargs)
    body = freshness.kept(key)
    if body is None:
        body = _answer(search_kwargs)
        freshness.keep(key, body, seconds=SEARCH_KEEP_SECONDS)
    return HttpResponse(body, content_type="application/json")


def _kept_key(search_kwargs: dict) -> str | None:
    """Where this search's answer is kept: the stamp, the question and the day (the rights
    filters read today's date). None without Redis."""
    stamp = freshness.stamp(freshness.CATALOGUE)
    if stamp is None:
        return None
    question = repr((sorted(search_kwargs.items()), PER_PAGE, timezone.localdate()))
    digest = hashlib.sha256(stamp + question.encode()).hexdigest()
    return f"studio:search:{digest}"


def _answer(search_kwargs: dict) -> bytes:
    """The search's JSON, checked against SearchOut as ninja checks a returned dict."""
    results = entry_search(**search_kwargs, per_page=PER_PAGE, fields=_COLUMNS)
    answer = SearchOut.model_validate(
        {
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
    )
    return json.dumps(answer.model_dump(), cls=NinjaJSONEncoder).encode()
