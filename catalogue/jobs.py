"""RQ jobs of the delivery stage (studio.queues.STAGES["deliver"])."""

from __future__ import annotations

from catalogue.services import asset_sync, entries_sync


def sync_assets(item_ids: list[str]) -> list[str | None]:
    """Each item's asset follows its approval: published, restored or withdrawn."""
    assets = [asset_sync(item_id=item_id) for item_id in item_ids]
    return [str(asset.pk) if asset else None for asset in assets]


def index_items(item_ids: list[str]) -> int:
    """Each item's catalogue entry follows the item (status, verdict, reasons, reviewer)."""
    return entries_sync(item_ids=item_ids)
