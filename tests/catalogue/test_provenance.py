"""Provenance inside every delivered file: A1111 infotext, XMP (read back by exiftool), sRGB."""

from __future__ import annotations

import datetime
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from PIL import Image, ImageCms, features

from catalogue.delivery.metadata import (
    encode,
    exif_bytes,
    master_with_provenance,
    usage_terms,
    xmp_packet,
)
from catalogue.delivery.signing import TRAINED_ALGORITHMIC_MEDIA
from tests.generation.test_infotext import parse_generation_parameters

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool is not installed (Debian: libimage-exiftool-perl)"
)
FORMATS = ["png", "jpeg", "webp"] + (["avif"] if features.check("avif") else [])

TITLE = 'Bottes <cuir> & "daim" — 猫 ]]> </rdf:li>'
PROMPT = 'boots <b>bold</b> & "quoted", Café 猫\nsecond line </x:xmpmeta> <?xpacket end="w"?>'


def exiftool(data: bytes, tmp_path, suffix: str) -> dict:
    path = tmp_path / f"file.{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        [EXIFTOOL, "-j", "-G", "-struct", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)[0]


def image() -> Image.Image:
    return Image.new("RGB", (96, 64), (200, 80, 40))


@pytest.fixture
def rights_asset(asset):
    asset.title = TITLE
    asset.prompt = PROMPT
    asset.item.prompt = PROMPT
    asset.tags = ["boots", "suede & leather"]
    asset.rights = asset.Rights.CUSTOM
    asset.rights_custom = "Licensed to ACME <Ltd> for paid social"
    asset.rights_channels = ["instagram", "tiktok"]
    asset.rights_territories = ["DE", "FR"]
    asset.rights_until = datetime.date(2027, 6, 30)
    asset.save()
    asset.item.save(update_fields=["prompt"])
    return asset


def test_usage_terms_say_the_licence_channels_territories_and_expiry(rights_asset):
    terms = usage_terms(rights_asset)

    assert terms.startswith("Custom licence: Licensed to ACME <Ltd> for paid social.")
    assert "Channels: instagram, tiktok." in terms
    assert "Territories: DE, FR." in terms
    assert "Until 2027-06-30." in terms


def test_the_xmp_packet_is_well_formed_xml_with_special_characters_escaped(rights_asset):
    packet = xmp_packet(rights_asset, channel="instagram").decode("utf-8")
    body = packet.split("?>", 1)[1].rsplit("<?xpacket", 1)[0]

    root = ET.fromstring(body)

    texts = [element.text for element in root.iter()]
    assert TITLE in texts
    assert PROMPT in texts
    assert "<b>bold</b>" not in packet
    assert packet.count("<?xpacket end=") == 1


@needs_exiftool
@pytest.mark.parametrize("format", FORMATS)
def test_exiftool_reads_every_xmp_field_back(rights_asset, tmp_path, format):
    data, _ = encode(image(), format=format, quality=85, asset=rights_asset, channel="instagram")

    tags = exiftool(data, tmp_path, format)

    item = rights_asset.item
    assert tags["XMP:Title"] == TITLE
    assert tags["XMP:Description"] == PROMPT
    assert tags["XMP:Subject"] == ["boots", "suede & leather"]
    assert tags["XMP:Rights"] == "Licensed to ACME <Ltd> for paid social"
    assert tags["XMP:UsageTerms"] == usage_terms(rights_asset)
    assert tags["XMP:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert tags["XMP:Credit"] == "Studio"
    assert tags["XMP:DocumentID"] == f"xmp.did:{item.pk}"
    assert tags["XMP:ItemId"] == str(item.pk)
    assert tags["XMP:AssetId"] == str(rights_asset.pk)
    assert tags["XMP:Channel"] == "instagram"


@needs_exiftool
@pytest.mark.parametrize("format", FORMATS)
def test_the_infotext_is_where_sd_tools_look_for_it(rights_asset, tmp_path, format):
    data, _ = encode(image(), format=format, quality=85, asset=rights_asset, channel="web")

    tags = exiftool(data, tmp_path, format)

    text = tags["PNG:Parameters"] if format == "png" else tags["EXIF:UserComment"]
    parsed = parse_generation_parameters(text)
    item = rights_asset.item
    assert parsed["Prompt"] == PROMPT
    assert parsed["Negative prompt"] == item.negative_prompt
    assert parsed["Seed"] == str(item.seed)
    assert parsed["Sampler"] == "PLMS"
    assert parsed["Model"] == item.base_model.name


@pytest.mark.parametrize("format", ["jpeg", "webp"])
def test_the_user_comment_has_a1111s_byte_layout(asset, format):
    data, _ = encode(image(), format=format, quality=85, asset=asset, channel="web")

    with Image.open(io.BytesIO(data)) as opened:
        raw = opened.getexif().get_ifd(0x8769)[0x9286]
    # piexif.helper.UserComment.dump(text, encoding="unicode"), which A1111 writes and reads.
    assert raw.startswith(b"UNICODE\x00")
    text = raw[8:].decode("utf-16-be")
    assert parse_generation_parameters(text)["Seed"] == str(asset.item.seed)


def test_the_exif_block_is_big_endian_like_piexifs():
    assert exif_bytes("x")[6:8] == b"MM"


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_carries_the_srgb_profile(asset, format):
    data, _ = encode(image(), format=format, quality=85, asset=asset, channel="web")

    with Image.open(io.BytesIO(data)) as opened:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(opened.info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_an_unknown_format_is_refused(asset):
    with pytest.raises(ValueError, match="unknown format 'gif'"):
        encode(image(), format="gif", quality=85, asset=asset, channel="web")


@needs_exiftool
def test_the_delivered_master_keeps_its_pixels_and_gains_its_provenance(asset, tmp_path):
    with asset.image.open("rb") as handle, Image.open(handle) as original:
        pixels = original.convert("RGB").tobytes()
        size = original.size

    data = master_with_provenance(asset)

    with Image.open(io.BytesIO(data)) as master:
        assert master.format == "PNG"
        assert master.size == size
        assert master.convert("RGB").tobytes() == pixels
        parsed = parse_generation_parameters(master.text["parameters"])
    assert parsed["Seed"] == str(asset.item.seed)
    tags = exiftool(data, tmp_path, "png")
    assert tags["XMP:Channel"] == "master"
    assert tags["XMP:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
