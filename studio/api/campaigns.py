"""Campaigns over the API: the page's form, selectors and services, never a second copy of
their rules."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.utils.datastructures import MultiValueDict
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile

from generation.forms import CampaignForm, PriorityForm
from generation.models import Campaign, Item
from generation.selectors import (
    campaign_status,
    campaigns_with_progress,
    progress_of_annotated,
)
from generation.services import (
    campaign_control,
    campaign_estimate,
    campaign_plan,
    campaign_set_priority,
)
from studio.api.core import (
    IDEMPOTENCY_OPENAPI,
    MAX_LIMIT,
    Out,
    Page,
    Strict,
    form_errors,
    idempotent,
    keyset_page,
    problem,
    require,
    scoped,
)
from studio.errors import InputError
from studio.launch import campaign_launch

router = Router(tags=["campaigns"])


class Progress(Out):
    total: int
    done: int
    percent: int
    state: str
    counts: dict[str, int]


class CampaignOut(Out):
    id: str
    name: str
    status: str
    priority: str
    pause_reason: str
    pause_note: str
    template_version: int
    template: str
    recipe: int
    variations: int
    width: int
    height: int
    channels: list[str]
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    progress: Progress
    cost: str | None = None
    currency: str


class CampaignPage(Page):
    items: list[CampaignOut]


def _progress(progress) -> dict:
    return {
        "total": progress.total,
        "done": progress.done,
        "percent": progress.percent,
        "state": progress.state[0],
        "counts": {status: progress.counts.get(status, 0) for status in Item.Status.values},
    }


def _campaign(c: Campaign, progress, cost=None, *, template: str, created_by: str | None) -> dict:
    return {
        "id": str(c.pk),
        "name": c.name,
        "status": c.status,
        "priority": c.priority,
        "pause_reason": c.pause_reason,
        "pause_note": c.pause_note,
        "template_version": c.template_version_id,
        "template": template,
        "recipe": c.recipe_id,
        "variations": c.variations,
        "width": c.width,
        "height": c.height,
        "channels": list(c.channels or []),
        "created_by": created_by,
        "created_at": c.created_at,
        "finished_at": c.finished_at,
        "progress": _progress(progress),
        "cost": None if cost is None else str(cost),
        "currency": settings.STUDIO_CURRENCY,
    }


def campaign_or_404(pk) -> Campaign:
    campaign = (
        Campaign.objects.select_related("template_version__template", "recipe", "created_by")
        .defer("csv_rows", "csv_columns")  # up to STUDIO_MAX_CSV_ROWS rows nobody reads here
        .filter(pk=pk)
        .first()
    )
    if campaign is None:
        raise Http404
    return campaign


def _campaign_detail(pk) -> dict:
    """A campaign with its progress and cost (404 if there is none), read afresh."""
    found = campaign_status(pk=pk)
    if found is None:
        raise Http404
    return _campaign(
        found.campaign,
        found.progress,
        found.spent,
        template=found.template,
        created_by=found.created_by,
    )


class CampaignFilters(Strict):
    status: Campaign.Status | None = None
    q: str | None = Field(None, max_length=200, description="Part of the name.")
    created_by: str | None = Field(None, max_length=150, description="A username.")
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


@router.get(
    "/campaigns",
    response=CampaignPage,
    summary="Campaigns, newest first",
    auth=scoped("campaigns:read"),
)
def campaigns_list(request, filters: Query[CampaignFilters]):
    require(request, "campaigns:read")
    campaigns = campaigns_with_progress().defer("csv_rows", "csv_columns")
    if filters.status:
        campaigns = campaigns.filter(status=filters.status)
    if filters.q:
        campaigns = campaigns.filter(name__icontains=filters.q)
    if filters.created_by:
        campaigns = campaigns.filter(created_by__username=filters.created_by)
    rows, nxt = keyset_page(
        campaigns, order=("-created_at", "-pk"), cursor=filters.cursor, limit=filters.limit
    )
    return {
        "items": [
            _campaign(
                c,
                p,
                template=str(c.template_version),
                created_by=c.created_by.get_username() if c.created_by else None,
            )
            for c, p in progress_of_annotated(rows)
        ],
        "next_cursor": nxt,
    }


@router.get(
    "/campaigns/{uuid:campaign_id}",
    response=CampaignOut,
    summary="A campaign",
    auth=scoped("campaigns:read"),
)
def campaign_get(request, campaign_id: str):
    require(request, "campaigns:read")
    return _campaign_detail(campaign_id)


Cell = str | int | float | bool | None


class LoraSetIn(Strict):
    name: str = Field("", max_length=100)
    weights: dict[str, float] = Field(..., description="LoRA NAME or NAME:VERSION -> weight.")


class MatrixIn(Strict):
    """A variation matrix (the page's axes): every axis optional, unknown axes refused."""

    mode: str = Field("product", description="product (every combination) or zip (pair up).")
    seeds: int | list[int] | None = Field(
        None, description="Seeds per row (a count) or a list of seeds; replaces variations."
    )
    loras: dict[str, list[float]] | None = Field(
        None, description='Every combination of weights: {"style-a": [0.4, 0.8]}.'
    )
    lora_sets: list[LoraSetIn] | None = Field(None, description="Named LoRA combinations.")
    recipes: list[str | int] | None = Field(
        None, description="Recipes compared on the same rows and seeds: NAME:VERSION or ids."
    )
    templates: list[str | int] | None = Field(
        None,
        description="Versions of one prompt template compared on the same rows and seeds: "
        '"NAME vN", "NAME:N" or ids; replaces template.',
    )
    template: list[str | int] | None = Field(None, description="The same as templates.")
    guidance: list[float] | None = Field(None, description="Guidance scales.")
    steps: list[int] | None = Field(None, description="Step counts.")


# The page's matrix fields -> where the API's body has them.
_MATRIX_LOCS = {
    "lora_matrix": ["body", "matrix", "loras"],
    "matrix_recipes": ["body", "matrix", "recipes"],
    "matrix_templates": ["body", "matrix", "templates"],
    "guidance": ["body", "matrix", "guidance"],
    "steps": ["body", "matrix", "steps"],
    "matrix_mode": ["body", "matrix"],
}


class _MatrixForm(CampaignForm):
    """The page's form with the matrix from the API body (a JSON object, or its text in a
    multipart field) instead of the page's axis fields; the same validation follows."""

    def __init__(self, *args, matrix: dict | str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.api_matrix = matrix

    def clean(self) -> dict:
        data = super().clean()
        if self.api_matrix:
            self.matrix = self.api_matrix
        return data


def _has_seeds(matrix) -> bool:
    if isinstance(matrix, str):
        return '"seeds"' in matrix
    return "seeds" in matrix


def _matrix_errors(errors: list[dict], matrix) -> list[dict]:
    """Name the matrix's own fields in the errors of a request that sent one."""
    if not matrix:
        return errors
    for error in errors:
        field = error["loc"][1] if len(error["loc"]) > 1 else ""
        if field in _MATRIX_LOCS:
            error["loc"] = list(_MATRIX_LOCS[field])
        elif field == "variations" and _has_seeds(matrix):
            error["loc"] = ["body", "matrix", "seeds"]
    return errors


class CampaignIn(Strict):
    name: str = Field(..., max_length=200)
    template: int = Field(..., description="A prompt template version id (an active one).")
    recipe: int = Field(..., description="A recipe id (an active one).")
    rows: list[dict[str, Cell]] = Field(
        ..., min_length=1, description="The CSV rows as objects: column -> value."
    )
    variations: int = Field(1, ge=1)
    seed_policy: str = "fixed"
    base_seed: int | None = Field(None, ge=0, le=2**31 - 1)
    priority: str = "normal"
    channels: list[str] = Field(default_factory=list, max_length=50)
    custom_size: str = Field("", max_length=20)
    hero_recipe: int | None = None
    variation_recipe: int | None = None
    thumbnail_recipe: int | None = None
    approve_at: float | None = Field(None, ge=0, le=1)
    reject_below: float | None = Field(None, ge=0, le=1)
    matrix: MatrixIn | None = Field(
        None, description="A variation matrix; its seeds axis replaces variations."
    )


class CampaignCsvIn(Schema):
    """The New campaign page's fields (also hero_recipe, variation_recipe, thumbnail_recipe
    and repeated channels)."""

    name: str = Field(..., max_length=200)
    template: int
    recipe: int
    variations: int = 1
    seed_policy: str = "fixed"
    base_seed: int | None = None
    priority: str = "normal"
    custom_size: str = ""
    csv_encoding: str = "auto"
    approve_at: float | None = None
    reject_below: float | None = None
    matrix: str = Field(
        "", max_length=20000, description="A variation matrix as JSON text (see CampaignIn)."
    )


def _rows_csv(rows: list[dict]) -> bytes:
    if len(rows) > settings.STUDIO_MAX_CSV_ROWS:
        raise InputError(
            "rows", f"{len(rows):,} rows; the limit is {settings.STUDIO_MAX_CSV_ROWS:,}"
        )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return out.getvalue().encode("utf-8")


def _launch(request, form: CampaignForm, *, csv_field: str = "csv_file") -> tuple[int, dict]:
    """The page's own path: the form validates, campaign_launch creates, and a service's
    error lands on the form field the page shows it on (the CSV's: ``csv_field``)."""
    if form.is_valid():
        try:
            campaign = campaign_launch(**form.submit_kwargs(), user=request.auth.user)
        except InputError as exc:
            form.add_input_error(exc)
        else:
            return 201, _campaign_detail(campaign.pk)
    errors = _matrix_errors(form_errors(form), getattr(form, "api_matrix", None))
    for error in errors:
        if error["loc"] == ["body", "csv_file"]:
            error["loc"] = ["body", csv_field]
    detail = "; ".join(e["msg"] for e in errors[:3])
    return 422, json.loads(problem(422, detail, errors=errors, kind="invalid-input").content)


@router.post(
    "/campaigns",
    response={201: CampaignOut},
    summary="Create a campaign from JSON rows (Idempotency-Key honoured)",
    auth=scoped("campaigns:write"),
    openapi_extra=IDEMPOTENCY_OPENAPI,
)
@idempotent
def campaign_create(request, payload: CampaignIn):
    require(request, "campaigns:write")
    return _launch(request, _json_form(payload), csv_field="rows")


def _json_form(payload: CampaignIn) -> CampaignForm:
    """The page's form, filled from a JSON body (its rows become the CSV it reads)."""
    data = payload.model_dump(exclude={"rows", "channels", "matrix"})
    fields = MultiValueDict(
        {k: ["" if v is None else str(v)] for k, v in data.items()} | {"channels": payload.channels}
    )
    upload = SimpleUploadedFile("rows.csv", _rows_csv(payload.rows), content_type="text/csv")
    matrix = payload.matrix.model_dump(exclude_none=True) if payload.matrix else None
    return _MatrixForm(fields, MultiValueDict({"csv_file": [upload]}), matrix=matrix)


class EstimateLineOut(Schema):
    recipe: int
    images: int
    cost: str
    seconds: float
    basis: str


class EstimateOut(Schema):
    images: int
    total: str
    per_image: str
    seconds: float
    duration: str
    currency: str
    over: bool
    problems: list[str]
    lines: list[EstimateLineOut]


@router.post(
    "/campaigns/estimate",
    response=EstimateOut,
    summary="What a campaign would cost and take (the create body; creates nothing)",
    auth=scoped("campaigns:read"),
)
def campaign_estimate_get(request, payload: CampaignIn):
    require(request, "campaigns:read")
    form = _json_form(payload)
    if form.is_valid():
        try:
            estimate = campaign_estimate(plan=campaign_plan(**form.service_kwargs()))
        except InputError as exc:
            form.add_input_error(exc)
        else:
            return {
                "images": estimate.images,
                "total": str(estimate.total),
                "per_image": str(estimate.per_image),
                "seconds": estimate.seconds,
                "duration": estimate.duration,
                "currency": settings.STUDIO_CURRENCY,
                "over": estimate.over,
                "problems": estimate.problems(),
                "lines": [
                    {
                        "recipe": line.recipe.pk,
                        "images": line.images,
                        "cost": str(line.cost),
                        "seconds": line.seconds,
                        "basis": line.speed_basis,
                    }
                    for line in estimate.lines
                ],
            }
    errors = _matrix_errors(form_errors(form), form.api_matrix)
    for error in errors:
        if error["loc"] == ["body", "csv_file"]:
            error["loc"] = ["body", "rows"]
    return problem(422, "; ".join(e["msg"] for e in errors[:3]), errors=errors)


@router.post(
    "/campaigns/csv",
    response={201: CampaignOut},
    summary="Create a campaign from an uploaded CSV (multipart; Idempotency-Key honoured)",
    auth=scoped("campaigns:write"),
    openapi_extra=IDEMPOTENCY_OPENAPI,
)
@idempotent
def campaign_create_csv(request, csv_file: File[UploadedFile], fields: Form[CampaignCsvIn]):
    """The page's form reads the fields itself (same limits and messages); what the client
    left out gets the schema's defaults, as the page's initial values would."""
    require(request, "campaigns:write")
    data = request.POST.copy()
    for name, value in fields.model_dump().items():
        if name not in data and value is not None:
            data[name] = str(value)
    return _launch(request, _MatrixForm(data, request.FILES, matrix=fields.matrix.strip()))


class PriorityIn(Strict):
    priority: str


class ActionOut(Schema):
    message: str
    campaign: CampaignOut


def _act(request, campaign_id, action: str) -> dict:
    require(request, "campaigns:write")
    campaign = campaign_or_404(campaign_id)
    message = campaign_control(campaign=campaign, action=action)
    return {"message": message, "campaign": _campaign_detail(campaign.pk)}


@router.post(
    "/campaigns/{uuid:campaign_id}/pause", response=ActionOut, auth=scoped("campaigns:write")
)
def campaign_pause(request, campaign_id: str):
    return _act(request, campaign_id, "pause")


@router.post(
    "/campaigns/{uuid:campaign_id}/resume", response=ActionOut, auth=scoped("campaigns:write")
)
def campaign_resume(request, campaign_id: str):
    return _act(request, campaign_id, "resume")


@router.post(
    "/campaigns/{uuid:campaign_id}/cancel", response=ActionOut, auth=scoped("campaigns:write")
)
def campaign_cancel(request, campaign_id: str):
    return _act(request, campaign_id, "cancel")


@router.post(
    "/campaigns/{uuid:campaign_id}/retry",
    response=ActionOut,
    summary="Retry failed",
    auth=scoped("campaigns:write"),
)
def campaign_retry(request, campaign_id: str):
    return _act(request, campaign_id, "retry")


@router.post(
    "/campaigns/{uuid:campaign_id}/priority", response=ActionOut, auth=scoped("campaigns:write")
)
def campaign_priority(request, campaign_id: str, payload: PriorityIn):
    require(request, "campaigns:write")
    campaign = campaign_or_404(campaign_id)
    form = PriorityForm({"priority": payload.priority})
    if not form.is_valid():
        raise InputError("priority", "choose high or normal")
    campaign_set_priority(campaign=campaign, priority=form.cleaned_data["priority"])
    return {
        "message": f"Priority set to {campaign.get_priority_display()}.",
        "campaign": _campaign_detail(campaign.pk),
    }
