"""Small factories for the export tests: published assets with renditions made directly (tiny
Pillow images in storage), and reading a built export's zip back."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from catalogue.models import Asset, Export, Rendition
from catalogue.services import asset_publish
from tests.conftest import route_items

GAME_TEMPLATE = "game {asset_type} of a {subject}, {biome} biome, {rarity} rarity"


def rendition_for(
    asset: Asset,
    channel: str = "instagram",
    *,
    size: tuple[int, int] = (96, 96),
    format: str = "jpeg",
    upscale: float = 1.0,
    colour: tuple[int, int, int] = (200, 40, 40),
) -> Rendition:
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    image.save(buffer, format={"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}[format])
    data = buffer.getvalue()
    ext = {"jpeg": "jpg"}.get(format, format)
    name = default_storage.save(
        f"renditions/{asset.campaign_id}/{asset.pk}/{channel}.{ext}", ContentFile(data)
    )
    return Rendition.objects.create(
        asset=asset,
        channel=channel,
        width=size[0],
        height=size[1],
        format=format,
        file=name,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upscale=upscale,
        upscaled=upscale > 2.0,
        fingerprint="test",
    )


def published(campaign, count: int, *, channels=("instagram", "web-thumbnail")) -> list[Asset]:
    """``count`` approved, published assets of the campaign, each with a rendition per channel."""
    items = route_items(campaign, to="approved", count=count)
    assets = [asset_publish(item_id=item.pk) for item in items]
    for asset in assets:
        for channel in channels:
            rendition_for(asset, channel, format="webp" if channel == "web-thumbnail" else "jpeg")
    return assets


def game_campaign(creative, base_model):
    from generation.services import prompt_template_version_create, recipe_create
    from studio.launch import campaign_launch
    from tests.conftest import fixture_csv

    template = prompt_template_version_create(name="game-icon", body=GAME_TEMPLATE)
    recipe = recipe_create(name="icons", base_model=base_model, steps=2, width=64, height=64)
    return campaign_launch(
        name="Loot icons",
        template_version=template,
        recipe=recipe,
        csv_bytes=fixture_csv("game_assets.csv"),
        csv_filename="game_assets.csv",
        variations=2,
        user=creative,
        base_seed=3,
    )


class Zip:
    """A built export read back: its names, the bytes of each and both manifests."""

    def __init__(self, export: Export) -> None:
        with default_storage.open(export.file.name, "rb") as handle:
            self.data = handle.read()
        self.zf = zipfile.ZipFile(io.BytesIO(self.data))
        self.names = set(self.zf.namelist())
        self.manifest = json.loads(self.zf.read("manifest.json"))
        text = self.zf.read("manifest.csv").decode("utf-8-sig")
        self.rows = list(csv.DictReader(io.StringIO(text)))

    def read(self, name: str) -> bytes:
        return self.zf.read(name)

    def json(self, name: str):
        return json.loads(self.zf.read(name))

    def files(self) -> set[str]:
        return self.names - {"manifest.json", "manifest.csv", "assets.json"}
