"""Prompt templates and recipes (every version), and the managers' cost figures."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from ninja import Field, Query, Router, Schema

from generation.models import Campaign, PromptTemplate, Recipe
from generation.selectors import cost_totals
from generation.services import month_parse
from studio.api.core import MAX_LIMIT, Page, Strict, keyset_page, require, scoped

router = Router(tags=["registry"])
reports = Router(tags=["reports"])

# --- Registry --------------------------------------------------------------------------------


class TemplateVersionOut(Schema):
    id: int
    version: int
    body: str
    negative_prompt: str
    placeholders: list[str]
    is_active: bool
    created_at: datetime


class TemplateOut(Schema):
    id: int
    name: str
    description: str
    versions: list[TemplateVersionOut]


class TemplatePage(Page):
    items: list[TemplateOut]


class RecipeOut(Schema):
    id: int
    name: str
    version: int
    purpose: str
    base_model: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    scheduler: str
    is_active: bool


class RecipePage(Page):
    items: list[RecipeOut]


def _template(t: PromptTemplate) -> dict:
    return {
        "id": t.pk,
        "name": t.name,
        "description": t.description,
        "versions": [
            {
                "id": v.pk,
                "version": v.version,
                "body": v.body,
                "negative_prompt": v.negative_prompt,
                "placeholders": list(v.placeholders or []),
                "is_active": v.is_active,
                "created_at": v.created_at,
            }
            for v in t.versions.all()
        ],
    }


def _recipe(r: Recipe) -> dict:
    return {
        "id": r.pk,
        "name": r.name,
        "version": r.version,
        "purpose": r.purpose,
        "base_model": str(r.base_model),
        "steps": r.steps,
        "guidance_scale": r.guidance_scale,
        "width": r.width,
        "height": r.height,
        "scheduler": r.scheduler,
        "is_active": r.is_active,
    }


@router.get(
    "/templates",
    response=TemplatePage,
    summary="Prompt templates and their versions",
    auth=scoped("campaigns:read"),
)
def templates_list(request, cursor: str | None = None, limit: int = Query(50, ge=1, le=MAX_LIMIT)):
    require(request, "campaigns:read")
    rows, nxt = keyset_page(
        PromptTemplate.objects.prefetch_related("versions"),
        order=("name", "pk"),
        cursor=cursor,
        limit=limit,
    )
    return {"items": [_template(t) for t in rows], "next_cursor": nxt}


@router.get("/templates/{int:template_id}", response=TemplateOut, auth=scoped("campaigns:read"))
def template_get(request, template_id: int):
    require(request, "campaigns:read")
    return _template(PromptTemplate.objects.prefetch_related("versions").get(pk=template_id))


@router.get(
    "/recipes", response=RecipePage, summary="Recipes, every version", auth=scoped("campaigns:read")
)
def recipes_list(
    request,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    name: str | None = Query(None, max_length=100),
    active: bool | None = None,
):
    require(request, "campaigns:read")
    recipes = Recipe.objects.select_related("base_model")
    if name:
        recipes = recipes.filter(name=name)
    if active is not None:
        recipes = recipes.filter(is_active=active)
    rows, nxt = keyset_page(recipes, order=("name", "version", "pk"), cursor=cursor, limit=limit)
    return {"items": [_recipe(r) for r in rows], "next_cursor": nxt}


# --- Reports ---------------------------------------------------------------------------------


class CostFilters(Strict):
    by: list[str] = Field(
        default_factory=list, max_length=5, description="Group by (repeat): kind, month, …"
    )
    month: str | None = Field(None, max_length=7, description="YYYY-MM")
    campaign: uuid.UUID | None = None


class CostRowsOut(Schema):
    currency: str
    by: list[str]
    rows: list[dict]


@reports.get(
    "/reports/costs",
    response=CostRowsOut,
    summary="Ledger totals grouped by kind, month, campaign, recipe, … (the managers' figures)",
    auth=scoped("reports:read"),
)
def report_costs(request, filters: Query[CostFilters]):
    require(request, "reports:read")
    by = filters.by or ["kind"]
    when = month_parse(filters.month) if filters.month else None
    campaign = Campaign.objects.filter(pk=filters.campaign).first() if filters.campaign else None
    if filters.campaign and campaign is None:
        raise Http404
    rows = cost_totals(by=by, month=when, campaign=campaign)
    return {
        "currency": settings.STUDIO_CURRENCY,
        "by": by,
        "rows": json.loads(json.dumps(rows, cls=DjangoJSONEncoder)),
    }
