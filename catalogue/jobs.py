"""RQ jobs of the delivery stage (studio.queues.STAGES["deliver"])."""

from __future__ import annotations

import logging

from catalogue.delivery.renditions import asset_delivery_failed, renditions_make
from catalogue.models import Asset
from catalogue.services import asset_sync, entries_sync
from studio.queues import fresh_connections

logger = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """Some assets of a batch could not be delivered; RQ's retry runs the batch again (the
    ones done meanwhile are skipped: their renditions' fingerprints match)."""


@fresh_connections
def sync_assets(item_ids: list[str]) -> list[str | None]:
    """Each item's asset follows its approval: published, restored or withdrawn; a
    published one then gets its renditions per channel. One asset's failure (its master
    missing, say) is recorded on it and the others go on; the job then fails, to be retried."""
    assets = [asset_sync(item_id=item_id) for item_id in item_ids]
    failed = []
    for asset in assets:
        if asset is None or asset.status != Asset.Status.PUBLISHED:
            continue
        try:
            renditions_make(asset_id=asset.pk)
        except Exception as exc:  # noqa: BLE001 - any one asset's failure; reported below
            logger.exception("delivery of asset %s failed", asset.pk)
            asset_delivery_failed(asset_id=asset.pk, error=str(exc) or type(exc).__name__)
            failed.append(f"{asset.pk}: {exc}")
    if failed:
        raise DeliveryFailed(
            f"{len(failed)} of {len(assets)} deliveries failed: " + "; ".join(failed)
        )
    return [str(asset.pk) if asset else None for asset in assets]


@fresh_connections
def index_items(item_ids: list[str]) -> int:
    """Each item's catalogue entry follows the item (status, verdict, reasons, reviewer)."""
    return entries_sync(item_ids=item_ids)


@fresh_connections
def build_export(export_ids) -> list[str | None]:
    """Build each export named (the "export" stage hands one); a second run does nothing,
    a run after a worker's death starts the zip again (catalogue.delivery.exports)."""
    from catalogue.delivery.exports import export_build

    ids = export_ids if isinstance(export_ids, list | tuple) else [export_ids]
    built = [export_build(export_id=pk) for pk in ids]
    return [str(export.pk) if export else None for export in built]
