"""Writes for the catalogue, the only owner of asset state: publishing approved items,
following their approval (sync), withdrawals and restores, and the search index."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import TextField, Value
from django.utils import timezone

from catalogue.models import Asset
from generation.models import Item
from studio import queues
from studio.errors import InputError

logger = logging.getLogger(__name__)

SEARCH_CONFIG = "english"
THUMBNAIL_SIDE = 384


def _thumbnail(item: Item) -> bytes:
    from PIL import Image

    with item.image.open("rb") as handle:
        image = Image.open(handle, formats=["PNG"])
        image.load()
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", quality=85)
    return buffer.getvalue()


def _approved_by(item: Item) -> str:
    task = getattr(item, "review_task", None)
    if task is not None and task.decided_by_id:
        return task.decided_by.get_username()
    return "automatic"


def asset_publish(*, item_id) -> Asset | None:
    """Publish an approved item as a catalogue asset (once; a second call returns it)."""
    item = (
        Item.objects.select_related("campaign__recipe", "base_model", "review_task__decided_by")
        .filter(pk=item_id)
        .first()
    )
    if item is None or item.status != Item.Status.APPROVED:
        return None
    existing = Asset.objects.filter(item=item).first()
    if existing:
        return existing
    thumb_name = default_storage.save(
        f"thumbnails/{item.campaign_id}/{item.pk}.webp", ContentFile(_thumbnail(item))
    )
    quality = getattr(item, "quality", None)
    provenance = item.provenance() | {
        "recipe": item.params.get("recipe"),
        "template": str(item.campaign.template_version),
        "generated_at": item.generated_at.isoformat() if item.generated_at else None,
        "worker": item.worker,
        "duration_s": item.duration_s,
        "quality": {"overall": quality.overall, "verdict": quality.verdict} if quality else None,
    }
    title = " ".join(v for v in list(item.row_data.values())[:3] if v)[:300] or item.prompt[:300]
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                item=item,
                campaign=item.campaign,
                title=title,
                prompt=item.prompt,
                tags=[item.params.get("purpose", ""), item.campaign.name][:20],
                fields=item.row_data,
                provenance=provenance,
                image=item.image.name,
                thumbnail=thumb_name,
                width=item.params["width"],
                height=item.params["height"],
                cost=item.cost,
                approved_by=_approved_by(item),
            )
            asset_search_refresh(asset_ids=[asset.pk])
    except IntegrityError:
        # Published concurrently by another run of the same job.
        default_storage.delete(thumb_name)
        return Asset.objects.get(item=item)
    return asset


def _weighted(text: str, weight: str) -> SearchVector:
    return SearchVector(Value(text, output_field=TextField()), weight=weight, config=SEARCH_CONFIG)


def asset_search_refresh(*, asset_ids) -> None:
    """Rebuild the weighted search vectors: A prompt and title, B tags and CSV fields,
    C model, LoRA and campaign names."""
    assets = Asset.objects.filter(pk__in=asset_ids).select_related("campaign", "item__base_model")
    for asset in assets:
        fields = " ".join(str(v) for v in asset.fields.values())
        names = " ".join(
            [asset.campaign.name, asset.item.base_model.name]
            + [lora["name"] for lora in asset.item.loras]
        )
        Asset.objects.filter(pk=asset.pk).update(
            search_vector=_weighted(f"{asset.title} {asset.prompt}", "A")
            + _weighted(" ".join(asset.tags) + " " + fields, "B")
            + _weighted(names, "C")
        )


# A withdrawn asset published again keeps no trace of the withdrawal on its row.
_PUBLISHED_AGAIN = {
    "status": Asset.Status.PUBLISHED,
    "withdrawn_reason": "",
    "withdrawn_note": "",
    "withdrawn_by": None,
    "withdrawn_at": None,
}


def asset_sync(*, item_id) -> Asset | None:
    """Make the item's asset follow the item's approval; idempotent (the delivery job).

    Approved: publish it, or publish again an asset that an undone approval withdrew. Not
    approved (an approval undone): withdraw a published asset, recording why. An asset an
    admin withdrew stays withdrawn whatever happens to the item.
    """
    status = Item.objects.filter(pk=item_id).values_list("status", flat=True).first()
    if status is None:
        return None
    asset = Asset.objects.filter(item_id=item_id).first()
    if status == Item.Status.APPROVED:
        if asset is None:
            return asset_publish(item_id=item_id)
        Asset.objects.filter(
            pk=asset.pk, status=Asset.Status.WITHDRAWN, withdrawn_reason=Asset.Withdrawal.REVIEW
        ).update(**_PUBLISHED_AGAIN)
    elif asset is not None:
        Asset.objects.filter(pk=asset.pk, status=Asset.Status.PUBLISHED).update(
            status=Asset.Status.WITHDRAWN,
            withdrawn_reason=Asset.Withdrawal.REVIEW,
            withdrawn_note=f"the item is {status} again",
            withdrawn_at=timezone.now(),
        )
    if asset is not None:
        asset.refresh_from_db()
    return asset


def asset_withdraw(*, asset: Asset, user, note: str = "") -> bool:
    """An admin withdraws a published asset; no automatic step publishes it again."""
    return bool(
        Asset.objects.filter(pk=asset.pk, status=Asset.Status.PUBLISHED).update(
            status=Asset.Status.WITHDRAWN,
            withdrawn_reason=Asset.Withdrawal.ADMIN,
            withdrawn_note=(note or "").strip(),
            withdrawn_by=user,
            withdrawn_at=timezone.now(),
        )
    )


def asset_restore(*, asset: Asset, user) -> bool:
    """An admin publishes a withdrawn asset again; only while its item is approved."""
    if not Item.objects.filter(pk=asset.item_id, status=Item.Status.APPROVED).exists():
        raise InputError("status", "the image is no longer approved; approve it in review first")
    return bool(
        Asset.objects.filter(pk=asset.pk, status=Asset.Status.WITHDRAWN).update(**_PUBLISHED_AGAIN)
    )


def assets_reconcile() -> dict[str, int]:
    """Assets out of step with their items (a delivery job lost with Redis or a worker):
    approved items without a published asset, published assets of items no longer
    approved. Hands them to the delivery stage again; its job is idempotent."""
    stale = timezone.now() - timedelta(seconds=2 * settings.JOB_TIMEOUT_DELIVERY)
    unpublished = (
        Item.objects.filter(status=Item.Status.APPROVED, finished_at__lt=stale)
        .exclude(asset__status=Asset.Status.PUBLISHED)
        .exclude(asset__withdrawn_reason=Asset.Withdrawal.ADMIN)
    )
    orphaned = Asset.objects.filter(status=Asset.Status.PUBLISHED).exclude(
        item__status=Item.Status.APPROVED
    )
    ids = [str(pk) for pk in unpublished.values_list("pk", flat=True)]
    ids += [str(pk) for pk in orphaned.values_list("item_id", flat=True)]
    for start in range(0, len(ids), 50):
        queues.enqueue("deliver", ids[start : start + 50])
    return {"resynced": len(ids)}
