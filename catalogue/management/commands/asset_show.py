"""Print one asset with its provenance, rights, tags and renditions."""

from __future__ import annotations

import json
import uuid

from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management.base import BaseCommand, CommandError

from catalogue.models import Asset, Entry
from catalogue.services import rights_values


def stored_path(name: str) -> str:
    """The file's local path when storage is the filesystem, else its key in the bucket."""
    if name and isinstance(default_storage, FileSystemStorage):
        return default_storage.path(name)
    return name


def asset_facts(asset: Asset) -> dict:
    entry = Entry.objects.filter(item_id=asset.item_id).first()
    renditions = [
        {
            "channel": r.channel,
            "width": r.width,
            "height": r.height,
            "format": r.format,
            "path": stored_path(r.file.name),
            "bytes": r.bytes,
            "sha256": r.sha256,
            "upscale": round(r.upscale, 2),
            "upscaled": r.upscaled,
            "watermarked": r.watermarked,
            "signed": r.signed,
        }
        for r in asset.renditions.order_by("channel")
    ]
    return {
        "asset_id": str(asset.pk),
        "item_id": str(asset.item_id),
        "campaign": {"id": str(asset.campaign_id), "name": asset.campaign.name},
        "title": asset.title,
        "status": asset.status,
        "ab_label": asset.ab_label,
        "master": {
            "path": stored_path(asset.image.name),
            "width": asset.width,
            "height": asset.height,
        },
        "fields": asset.fields,
        "provenance": asset.provenance,
        "rights": rights_values(asset) | {"expired": asset.rights_expired()},
        "tags": list(entry.tag_names) if entry else list(asset.tags),
        "tag_sources": entry.tags if entry else [],
        "renditions": renditions,
        "delivery": asset.delivery,
        "approved_by": asset.approved_by,
        "cost": str(asset.cost),
    }


class Command(BaseCommand):
    help = "Show an asset (by asset id or item id): provenance, rights, tags and renditions."

    def add_arguments(self, parser):
        parser.add_argument("id", help="An asset id or the id of its item.")
        parser.add_argument("--json", action="store_true", help="One JSON object.")

    def handle(self, *args, id, **opts):
        try:
            pk = uuid.UUID(id)
        except ValueError as exc:
            raise CommandError(f"ID: {id!r} is not an asset or item id", returncode=2) from exc
        asset = (
            Asset.objects.select_related("campaign", "item").filter(pk=pk).first()
            or Asset.objects.select_related("campaign", "item").filter(item_id=pk).first()
        )
        if asset is None:
            raise CommandError(f"ID: no asset has the id or item id {id}", returncode=2)
        facts = asset_facts(asset)
        if opts["json"]:
            self.stdout.write(json.dumps(facts, ensure_ascii=False, default=str))
            return
        out = self.stdout.write
        out(f"{facts['title']}  [{facts['status']}]  variation {facts['ab_label']}")
        out(f"asset {facts['asset_id']}  item {facts['item_id']}  campaign {asset.campaign.name}")
        master = facts["master"]
        out(f"master {master['width']}x{master['height']}  {master['path']}")
        prov = asset.provenance
        model = prov.get("base_model") or {}
        loras = ", ".join(
            f"{lora.get('name')} v{lora.get('version')} x{lora.get('weight')}"
            for lora in prov.get("loras") or []
        )
        out(f"model {model.get('name')} v{model.get('version')}  seed {prov.get('seed')}")
        if loras:
            out(f"loras {loras}")
        out(f"prompt {prov.get('prompt', asset.prompt)}")
        rights = facts["rights"]
        until = f" until {rights['rights_until']}" if rights.get("rights_until") else ""
        expired = " (expired)" if rights["expired"] else ""
        out(f"rights {rights['rights']}{until}{expired}")
        out(f"tags {', '.join(facts['tags']) or '-'}")
        if not facts["renditions"]:
            out("renditions: none yet")
        for r in facts["renditions"]:
            marks = [mark for mark in ("watermarked", "signed") if r[mark]]
            if r["upscaled"]:
                marks.append(f"upscaled x{r['upscale']:g}")
            out(
                f"  {r['channel']:<20} {r['width']}x{r['height']} {r['format']:<5} "
                f"{' '.join(marks)}  {r['path']}"
            )
        for channel, why in (asset.delivery.get("refused") or {}).items():
            out(f"  {channel:<20} refused: {why}")
        if asset.delivery.get("error"):
            out(f"delivery error: {asset.delivery['error']}")
