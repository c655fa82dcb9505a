"""Writes for the catalogue: publishing approved items as assets and indexing them."""

from __future__ import annotations

import io
import logging

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import TextField, Value

from catalogue.models import Asset
from generation.models import Item

logger = logging.getLogger(__name__)

SEARCH_CONFIG = "english"
THUMBNAIL_SIDE = 384


def enqueue_publish(item_id) -> None:
    import django_rq
    from rq import Retry

    from catalogue.jobs import publish_item

    django_rq.get_queue("delivery").enqueue(
        publish_item,
        str(item_id),
        job_timeout=settings.JOB_TIMEOUT_DELIVERY,
        retry=Retry(max=3, interval=[5, 30, 120]),
    )


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
    from generation.services import item_provenance

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
    provenance = item_provenance(item) | {
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


def asset_withdraw(*, item_id) -> bool:
    """Withdraw the catalogue asset of an item, if it was published (undo of an approval)."""
    return bool(
        Asset.objects.filter(item_id=item_id, status=Asset.Status.PUBLISHED).update(
            status=Asset.Status.WITHDRAWN
        )
    )


def asset_restore(*, item_id) -> bool:
    """Publish again an asset withdrawn by an undo, when the image is approved again."""
    return bool(
        Asset.objects.filter(item_id=item_id, status=Asset.Status.WITHDRAWN).update(
            status=Asset.Status.PUBLISHED
        )
    )
