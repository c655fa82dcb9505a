"""Catalogue exports over the API: the page's service (same selection, same messages), its
status and progress, and the zip.

Scope ``catalogue:read`` (an export hands over what the catalogue shows); creating one also
needs a role that exports (creative, manager, admin: not a reviewer). A caller sees its own
exports; managers and admins every one."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.http import Http404
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from catalogue.delivery.exports import (
    export_create,
    export_download_name,
    export_may_create,
    export_may_see,
    export_progress,
)
from catalogue.delivery.files import file_response
from catalogue.models import Export
from studio.api.core import IDEMPOTENCY_OPENAPI, Strict, idempotent, problem, require, scoped

router = Router(tags=["exports"])


class ExportIn(Strict):
    campaign: UUID | None = Field(None, description="Export this campaign's published images.")
    search: dict[str, str | list[str]] | None = Field(
        None,
        description="Or every result of this catalogue search: the search page's parameters "
        '(q, status, reason, campaign, model, lora, purpose, rights, …), e.g. {"q": "sneaker"}.',
    )
    layout: str = Field("default", max_length=20, description="default or game-engine.")
    include_expired: bool = Field(False, description="Include assets whose rights expired.")


class LeftOut(Schema):
    asset: str
    item: str
    title: str
    reason: str


class ExportOut(Schema):
    id: str
    status: str
    campaign: str | None
    search: dict | None
    layout: str
    include_expired: bool
    done: int
    total: int
    percent: int
    bytes: int
    left_out: list[LeftOut]
    error: str
    attempts: int
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    download_url: str | None


def _export(export: Export) -> dict:
    return {
        "id": str(export.pk),
        "status": export.status,
        "campaign": str(export.campaign_id) if export.campaign_id else None,
        "search": export.search if not export.campaign_id else None,
        "layout": export.layout,
        "include_expired": export.include_expired,
        "done": export.done,
        "total": export.total,
        "percent": export_progress(export),
        "bytes": export.bytes,
        "left_out": [
            {k: str(entry.get(k, "")) for k in ("asset", "item", "title", "reason")}
            for entry in export.left_out or []
        ],
        "error": export.error,
        "attempts": export.attempts,
        "created_by": export.created_by.get_username() if export.created_by else None,
        "created_at": export.created_at,
        "started_at": export.started_at,
        "finished_at": export.finished_at,
        "expires_at": export.expires_at,
        "download_url": (
            f"/api/v1/exports/{export.pk}/download"
            if export.status == Export.Status.READY
            else None
        ),
    }


def _export_or_404(request, export_id) -> Export:
    export = Export.objects.select_related("created_by").filter(pk=export_id).first()
    if export is None or not export_may_see(request.auth.user, export):
        raise Http404
    return export


@router.post(
    "/exports",
    response={202: ExportOut},
    summary="Queue an export of a campaign or of every result of a search (Idempotency-Key "
    "honoured); poll it for progress",
    auth=scoped("catalogue:read"),
    openapi_extra=IDEMPOTENCY_OPENAPI,
)
@idempotent
def export_new(request, payload: ExportIn):
    caller = require(request, "catalogue:read")
    if not export_may_create(caller.user):
        raise HttpError(403, "your role does not export (creatives, managers and admins do)")
    search = payload.search if payload.search is not None else None
    export = export_create(
        user=caller.user,
        campaign=payload.campaign,
        search=search,
        layout=payload.layout,
        include_expired=payload.include_expired,
    )
    return 202, _export(Export.objects.select_related("created_by").get(pk=export.pk))


@router.get(
    "/exports/{uuid:export_id}",
    response=ExportOut,
    summary="An export: status, progress, what was left out",
    auth=scoped("catalogue:read"),
)
def export_get(request, export_id: str):
    require(request, "catalogue:read")
    return _export(_export_or_404(request, export_id))


@router.get(
    "/exports/{uuid:export_id}/download",
    summary="The export's zip (409 while it is being built, 410 once expired)",
    auth=scoped("catalogue:read"),
)
def export_download(request, export_id: str):
    require(request, "catalogue:read")
    export = _export_or_404(request, export_id)
    if export.status == Export.Status.EXPIRED:
        return problem(410, "this export expired; make it again")
    if export.status != Export.Status.READY or not export.file.name:
        return problem(409, f"this export is {export.status}, not ready")
    return file_response(export.file.name, download_name=export_download_name(export))
