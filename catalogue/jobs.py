"""RQ jobs of the delivery queue."""

from __future__ import annotations

from catalogue.services import asset_publish


def publish_item(item_id: str) -> str | None:
    asset = asset_publish(item_id=item_id)
    return str(asset.pk) if asset else None
