"""Issue #11's "done when", as a user would check it: an approved demo-sized (64 px) image,
delivered by the delivery job under a campaign's settings, has renditions at exact sizes, the
watermark where configured, infotext an A1111 parser reads, XMP that exiftool reads, and a
C2PA manifest that c2pa.Reader validates; the delivered master has them too."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from catalogue.delivery.renditions import delivery_update
from catalogue.delivery.signing import TRAINED_ALGORITHMIC_MEDIA
from catalogue.jobs import sync_assets
from catalogue.models import Asset
from tests.catalogue.test_provenance import exiftool, needs_exiftool
from tests.catalogue.test_signing import read
from tests.generation.test_infotext import parse_generation_parameters


def _bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


@needs_exiftool
def test_an_approved_demo_image_is_delivered_with_its_provenance_inside_every_file(
    asset, creative, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the job is run by hand below
        delivery_update(
            campaign=asset.campaign,
            user=creative,
            channels=["instagram", "linkedin", "web-thumbnail", "640x360"],
            watermark="text",
            watermark_text="ACME",
            watermark_channels=["instagram"],
            watermark_position="bottom-right",
        )

    sync_assets([str(asset.item_id)])

    asset = Asset.objects.get(pk=asset.pk)
    renditions = {r.channel: r for r in asset.renditions.all()}
    assert {c: (r.width, r.height) for c, r in renditions.items()} == {
        "instagram": (1080, 1080),
        "linkedin": (1200, 627),
        "web-thumbnail": (400, 400),
        "640x360": (640, 360),
    }
    item = asset.item
    for channel, rendition in renditions.items():
        data = _bytes(rendition.file.name)
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.size == (rendition.width, rendition.height)
            assert opened.info.get("icc_profile")
        assert rendition.upscaled  # 64 px masters: every channel is an enlargement, marked
        assert rendition.watermarked == (channel == "instagram")

        tags = exiftool(data, tmp_path, rendition.format)
        text = tags["PNG:Parameters"] if rendition.format == "png" else tags["EXIF:UserComment"]
        parsed = parse_generation_parameters(text)
        assert parsed["Seed"] == str(item.seed)
        assert parsed["Sampler"]
        # A1111's parser splits "Size: WxH" into Size-1 and Size-2.
        assert (parsed["Size-1"], parsed["Size-2"]) == (
            str(item.params["width"]),
            str(item.params["height"]),
        )
        assert tags["XMP:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        assert tags["XMP:ItemId"] == str(item.pk)
        assert tags["XMP:Title"] == asset.title

        manifest, codes = read(data, rendition.format)
        assert rendition.signed
        assert codes == ["signingCredential.untrusted"]  # a private CA; nothing else wrong
        (actions,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
        (created,) = actions["data"]["actions"]
        assert created["action"] == "c2pa.created"
        assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        assert (
            f"model {item.base_model.name} v{item.base_model.version}"
            in (created["softwareAgent"]["name"])
        )

    # The mark is in the configured corner of the watermarked channel: its bottom-right
    # corner differs from the same crop of an unmarked channel, its top-left does not.
    marked = np.asarray(Image.open(io.BytesIO(_bytes(renditions["instagram"].file.name))))
    assert renditions["instagram"].crop == renditions["web-thumbnail"].crop
    plain = np.asarray(
        Image.open(io.BytesIO(_bytes(renditions["web-thumbnail"].file.name))).resize(
            (1080, 1080), Image.LANCZOS
        )
    ).astype(int)
    corner = np.abs(marked[-200:, -400:].astype(int) - plain[-200:, -400:]).mean()
    elsewhere = np.abs(marked[:200, :400].astype(int) - plain[:200, :400]).mean()
    assert corner > 3 * elsewhere

    master = _bytes(asset.image.name)
    manifest, codes = read(master, "png")
    assert codes == ["signingCredential.untrusted"]
    assert parse_generation_parameters(exiftool(master, tmp_path, "png")["PNG:Parameters"])


def test_the_asset_page_and_asset_show_list_the_renditions(asset, creative_client, capsys):
    from django.core.management import call_command

    sync_assets([str(asset.item_id)])

    page = creative_client.get(reverse("catalogue:asset", args=[asset.pk])).content.decode()
    assert "web-thumbnail" in page and "400×400" in page and "upscaled" in page

    call_command("asset_show", str(asset.item_id), "--json")
    facts = json.loads(capsys.readouterr().out)
    assert facts["asset_id"] == str(asset.pk)
    (rendition,) = facts["renditions"]
    assert {k: rendition[k] for k in ("channel", "width", "height", "format")} == {
        "channel": "web-thumbnail",
        "width": 400,
        "height": 400,
        "format": "webp",
    }
    assert rendition["path"] == default_storage.path(asset.renditions.get().file.name)
    assert facts["provenance"]["seed"] == asset.item.seed

    call_command("asset_show", str(asset.pk))
    text = capsys.readouterr().out
    assert "web-thumbnail" in text and "upscaled" in text


def test_asset_show_refuses_an_unknown_id_with_exit_2():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as info:
        call_command("asset_show", "not-an-id")
    assert info.value.returncode == 2
