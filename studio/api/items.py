"""Items over the API: lists in row order, one item with its provenance, its image and its
renditions."""

from __future__ import annotations

from datetime import datetime

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from catalogue.delivery.files import file_response
from catalogue.delivery.views import rendition_download_name
from catalogue.models import Rendition
from generation.models import Item
from generation.selectors import campaign_items
from studio.api.campaigns import campaign_or_404
from studio.api.core import MAX_LIMIT, Page, Strict, keyset_page, require, scoped
from studio.roles import ADMIN, has_role

router = Router(tags=["items"])

# --- Items -----------------------------------------------------------------------------------


class ItemOut(Schema):
    id: str
    campaign: str
    row_index: int
    variation: int
    channel: str
    purpose: str
    status: str
    prompt: str
    seed: int
    attempts: int
    cost: str
    error: str
    created_at: datetime
    generated_at: datetime | None
    finished_at: datetime | None
    image_url: str | None
    quality: dict | None = None
    provenance: dict | None = None
    review: dict | None = None
    asset: str | None = None
    # Its asset's renditions, one per channel: {"channel", "width", "height", "format",
    # "upscaled", "upscale", "watermarked", "signed", "sha256", "bytes", "url"}.
    renditions: list[dict] | None = None


class ItemPage(Page):
    items: list[ItemOut]


def _item(item: Item, *, detail: bool = False) -> dict:
    quality = getattr(item, "quality", None)
    out = {
        "id": str(item.pk),
        "campaign": str(item.campaign_id),
        "row_index": item.row_index,
        "variation": item.variation,
        "channel": item.channel,
        "purpose": item.purpose,
        "status": item.status,
        "prompt": item.prompt,
        "seed": item.seed,
        "attempts": item.attempts,
        "cost": str(item.cost),
        "error": item.error,
        "created_at": item.created_at,
        "generated_at": item.generated_at,
        "finished_at": item.finished_at,
        "image_url": f"/api/v1/items/{item.pk}/image" if item.image else None,
        "quality": (
            {
                "overall": quality.overall,
                "verdict": quality.verdict,
                "reasons": quality.reasons,
                "scores": quality.scores,
            }
            if quality is not None
            else None
        ),
    }
    if detail:
        task = getattr(item, "review_task", None)
        asset = getattr(item, "asset", None)
        out["provenance"] = item.provenance()
        out["review"] = (
            {
                "status": task.status,
                "decision": task.decision,
                "reason_code": task.reason_code,
                "decided_by": task.decided_by.get_username() if task.decided_by else None,
                "decided_at": task.decided_at.isoformat() if task.decided_at else None,
            }
            if task is not None
            else None
        )
        out["asset"] = str(asset.pk) if asset is not None else None
        out["renditions"] = [
            {
                "channel": r.channel,
                "width": r.width,
                "height": r.height,
                "format": r.format,
                "upscaled": r.upscaled,
                "upscale": r.upscale,
                "watermarked": r.watermarked,
                "signed": r.signed,
                "sha256": r.sha256,
                "bytes": r.bytes,
                "url": f"/api/v1/items/{item.pk}/renditions/{r.channel}",
            }
            for r in (asset.renditions.order_by("channel") if asset is not None else [])
        ]
    return out


def _items_qs():
    return Item.objects.select_related(
        "quality", "base_model", "review_task__decided_by", "asset", "campaign"
    )


class ItemFilters(Strict):
    status: Item.Status | None = None
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


@router.get(
    "/campaigns/{uuid:campaign_id}/items",
    response=ItemPage,
    summary="Items, in row order",
    auth=scoped("campaigns:read"),
)
def items_list(request, campaign_id: str, filters: Query[ItemFilters]):
    require(request, "campaigns:read")
    campaign = campaign_or_404(campaign_id)
    items = campaign_items(campaign=campaign, status=filters.status or "").select_related(
        "base_model"
    )
    rows, nxt = keyset_page(
        items,
        order=("row_index", "variation", "created_at", "pk"),
        cursor=filters.cursor,
        limit=filters.limit,
    )
    return {"items": [_item(i) for i in rows], "next_cursor": nxt}


def _item_or_404(item_id) -> Item:
    item = _items_qs().filter(pk=item_id).first()
    if item is None:
        raise Http404
    return item


@router.get(
    "/items/{uuid:item_id}",
    response=ItemOut,
    summary="An item with its provenance",
    auth=scoped("campaigns:read"),
)
def item_get(request, item_id: str):
    require(request, "campaigns:read")
    return _item(_item_or_404(item_id), detail=True)


@router.get(
    "/items/{uuid:item_id}/image", summary="The item's original PNG", auth=scoped("catalogue:read")
)
def item_image(request, item_id: str):
    require(request, "catalogue:read")
    item = _item_or_404(item_id)
    asset = getattr(item, "asset", None)
    withdrawn = asset is not None and asset.status == "withdrawn"
    # As catalogue:media: a withdrawn image is for admins (and reviewers while in review).
    if withdrawn and not has_role(request.auth.user, ADMIN) and item.status != Item.Status.REVIEW:
        raise Http404
    if not item.image:
        raise HttpError(404, "this item has no image yet")
    try:
        handle = default_storage.open(item.image.name, "rb")
    except OSError:
        raise Http404 from None
    return FileResponse(handle, content_type="image/png", filename=f"{item.pk}.png")


@router.get(
    "/items/{uuid:item_id}/renditions/{channel}",
    summary="One of the item's delivered renditions (a channel, e.g. instagram or 1600x900)",
    auth=scoped("catalogue:read"),
)
def item_rendition(request, item_id: str, channel: str):
    require(request, "catalogue:read")
    item = _item_or_404(item_id)
    asset = getattr(item, "asset", None)
    if asset is None:
        raise HttpError(404, "this item has no published asset")
    # As the page's download: a withdrawn asset's files are for admins only.
    if asset.status == "withdrawn" and not has_role(request.auth.user, ADMIN):
        raise Http404
    rendition = Rendition.objects.filter(asset=asset, channel=channel.strip().lower()).first()
    if rendition is None:
        raise HttpError(404, f"no rendition for channel {channel!r} (yet)")
    return file_response(rendition.file.name, download_name=rendition_download_name(rendition))
