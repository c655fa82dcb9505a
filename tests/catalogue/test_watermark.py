"""The watermark: where it goes, on which channels, text or logo, and the logo upload check."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalogue.delivery import watermark as watermark_module
from catalogue.delivery.renditions import delivery_for, delivery_update, renditions_make
from catalogue.delivery.watermark import watermark_apply, watermark_logo_check
from catalogue.models import Delivery
from studio.errors import InputError
from tests.conftest import textured_png


def _grey(size=(400, 300)) -> Image.Image:
    return Image.new("RGB", size, (128, 128, 128))


def _changed(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    """The bounding box (x0, y0, x1, y1) of the pixels that differ."""
    diff = np.abs(np.asarray(before, dtype=int) - np.asarray(after, dtype=int)).sum(axis=-1)
    ys, xs = np.nonzero(diff)
    if not len(xs):
        return None
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _text(**values) -> Delivery:
    defaults = {
        "watermark": "text",
        "watermark_text": "STUDIO",
        "watermark_opacity": 1.0,
        "watermark_margin": 0.05,
        "watermark_scale": 0.25,
    }
    return Delivery(**(defaults | values))


def _png_bytes(image: Image.Image, format="PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("position", "region"),
    [
        ("top-left", lambda x0, y0, x1, y1: x0 >= 15 and y0 >= 15 and x1 <= 200 and y1 <= 150),
        ("top-right", lambda x0, y0, x1, y1: x0 >= 200 and y0 >= 15 and x1 <= 385 and y1 <= 150),
        (
            "bottom-left",
            lambda x0, y0, x1, y1: x0 >= 15 and y0 >= 150 and x1 <= 200 and y1 <= 285,
        ),
        (
            "bottom-right",
            lambda x0, y0, x1, y1: x0 >= 200 and y0 >= 150 and x1 <= 385 and y1 <= 285,
        ),
        (
            "centre",
            lambda x0, y0, x1, y1: x0 >= 100 and x1 <= 300 and y0 >= 75 and y1 <= 225,
        ),
    ],
)
def test_the_text_mark_changes_pixels_only_where_it_is_placed(position, region):
    image = _grey()
    marked, applied = watermark_apply(image, _text(watermark_position=position), "instagram")
    box = _changed(image, marked)
    assert applied and box is not None
    assert region(*box), box
    assert marked.size == image.size and marked.mode == "RGB"
    assert _changed(_grey(), image) is None  # the image passed in is untouched


def test_the_mark_is_as_wide_as_its_scale_says():
    image = _grey()
    marked, _ = watermark_apply(image, _text(watermark_scale=0.5), "instagram")
    x0, _, x1, _ = _changed(image, marked)
    assert 0.4 * 400 <= x1 - x0 <= 0.52 * 400


def test_a_lower_opacity_changes_the_pixels_less():
    image = _grey()
    strong, _ = watermark_apply(image, _text(watermark_opacity=1.0), "instagram")
    faint, _ = watermark_apply(image, _text(watermark_opacity=0.2), "instagram")
    grey = np.asarray(image, dtype=int)
    assert (
        np.abs(np.asarray(faint, dtype=int) - grey).max()
        < np.abs(np.asarray(strong, dtype=int) - grey).max()
    )


def test_the_mark_goes_only_on_its_channels():
    image = _grey()
    delivery = _text(watermark_channels=["instagram"])
    assert watermark_apply(image, delivery, "instagram")[1] is True
    unmarked, applied = watermark_apply(image, delivery, "linkedin")
    assert applied is False and _changed(image, unmarked) is None


def test_no_watermark_leaves_the_image_alone():
    image = _grey()
    unmarked, applied = watermark_apply(image, Delivery(watermark="none"), "instagram")
    assert applied is False and unmarked is image


def test_a_logo_is_composited_in_its_corner():
    logo = Image.new("RGBA", (50, 20), (255, 0, 0, 255))
    data = watermark_logo_check(SimpleUploadedFile("logo.png", _png_bytes(logo)))
    name = default_storage.save("delivery/test/logo-v1.png", ContentFile(data))
    delivery = Delivery(
        watermark="logo",
        watermark_logo=name,
        watermark_position="top-left",
        watermark_margin=0.1,
        watermark_opacity=1.0,
        watermark_scale=0.25,
    )
    image = _grey()
    marked, applied = watermark_apply(image, delivery, "instagram")
    assert applied
    assert _changed(image, marked) == (30, 30, 130, 70)  # 100 px wide, 30 px from the edges
    assert marked.getpixel((80, 50)) == (255, 0, 0)


def test_a_transparent_logo_keeps_its_transparency():
    logo = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    logo.paste((0, 0, 255, 255), (10, 10, 30, 30))
    data = watermark_logo_check(SimpleUploadedFile("logo.png", _png_bytes(logo)))
    assert Image.open(io.BytesIO(data)).getpixel((0, 0))[3] == 0


# --- Logo uploads -----------------------------------------------------------------------------


def _logo_refused(name: str, data: bytes) -> str:
    with pytest.raises(InputError) as caught:
        watermark_logo_check(SimpleUploadedFile(name, data))
    assert caught.value.fields == {"watermark_logo"}
    return str(caught.value)


def test_an_svg_logo_is_refused():
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10"/>'
    assert "SVG" in _logo_refused("logo.svg", svg)
    assert "SVG" in _logo_refused("logo.png", b"  <svg onload='alert(1)'></svg>")


def test_another_format_behind_a_png_name_is_refused():
    gif = _png_bytes(Image.new("RGB", (8, 8)), format="GIF")
    assert "not a PNG, JPEG or WEBP" in _logo_refused("logo.png", gif)
    assert "not a PNG, JPEG or WEBP" in _logo_refused("logo.png", b"hello, not an image")


def test_a_decompression_bomb_logo_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    bomb = _png_bytes(Image.new("RGB", (64, 64)))
    assert "too large" in _logo_refused("logo.png", bomb)


def test_a_logo_over_the_byte_limit_is_refused(monkeypatch):
    monkeypatch.setattr(watermark_module, "MAX_LOGO_BYTES", 100)
    assert "larger than" in _logo_refused("logo.png", textured_png(1))


def test_a_jpeg_logo_is_accepted_and_stored_as_png():
    data = watermark_logo_check(SimpleUploadedFile("logo.jpg", _png_bytes(_grey(), "JPEG")))
    assert Image.open(io.BytesIO(data)).format == "PNG"


# --- On renditions ----------------------------------------------------------------------------


def test_renditions_are_watermarked_only_on_the_configured_channels(asset, creative):
    with default_storage.open(asset.image.name, "rb") as handle:
        master = handle.read()
    logo = SimpleUploadedFile("logo.png", _png_bytes(Image.new("RGBA", (30, 10), "red")))
    delivery_update(
        campaign=asset.campaign,
        user=creative,
        channels=["web-thumbnail", "linkedin"],
        watermark="logo",
        watermark_logo=logo,
        watermark_channels=["web-thumbnail"],
        watermark_opacity=1.0,
    )
    delivery = delivery_for(asset.campaign)
    assert delivery.watermark_logo.name.startswith(f"delivery/{asset.campaign_id}/")
    renditions_make(asset_id=asset.pk)
    made = {r.channel: r for r in asset.renditions.all()}
    assert made["web-thumbnail"].watermarked and not made["linkedin"].watermarked
    with default_storage.open(made["web-thumbnail"].file.name, "rb") as handle:
        thumb = Image.open(handle).convert("RGB")
        red, green, _ = thumb.getpixel((360, 370))  # bottom-right, the default position
        assert red > 200 and green < 60
    with default_storage.open(asset.image.name, "rb") as handle:
        assert handle.read() == master


def test_a_new_logo_replaces_the_old_file(asset, creative, django_capture_on_commit_callbacks):
    first = SimpleUploadedFile("a.png", _png_bytes(Image.new("RGB", (20, 10), "red")))
    delivery_update(campaign=asset.campaign, user=creative, watermark="logo", watermark_logo=first)
    old = delivery_for(asset.campaign).watermark_logo.name
    second = SimpleUploadedFile("b.png", _png_bytes(Image.new("RGB", (20, 10), "blue")))
    with django_capture_on_commit_callbacks(execute=True):
        delivery_update(campaign=asset.campaign, user=creative, watermark_logo=second)
    new = delivery_for(asset.campaign).watermark_logo.name
    assert new != old and default_storage.exists(new) and not default_storage.exists(old)
