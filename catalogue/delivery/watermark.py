"""The campaign's watermark on a rendition (never on the master): none, a line of text or a
logo image, placed in a corner or the centre, with a margin, an opacity and a width that is a
fraction of the rendition's width; and the check every logo upload goes through."""

from __future__ import annotations

import io
from functools import lru_cache

from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageFont

from studio.errors import InputError

MAX_LOGO_BYTES = 5 * 2**20
MAX_LOGO_SIDE = 4096
# Text is drawn at this size and measured, then drawn again at the size that gives the width.
_PROBE_SIZE = 100


def watermark_applies(delivery, channel: str) -> bool:
    """Whether the campaign's watermark goes on this channel's renditions."""
    if delivery.watermark == "none" or (
        delivery.watermark == "text" and not delivery.watermark_text.strip()
    ):
        return False
    return not delivery.watermark_channels or channel in delivery.watermark_channels


def watermark_apply(image: Image.Image, delivery, channel: str) -> tuple[Image.Image, bool]:
    """The rendition with the watermark composited where the delivery says, and whether one
    was applied. The image passed in is not changed."""
    if not watermark_applies(delivery, channel):
        return image, False
    width, height = image.size
    mark_width = max(1, round(width * delivery.watermark_scale))
    if delivery.watermark == "text":
        mark = _text_mark(delivery.watermark_text, mark_width)
    else:
        mark = _logo_mark(delivery.watermark_logo.name, mark_width)
    if mark.height > height:  # a tall logo on a wide banner: fit the height instead
        mark = mark.resize(
            (max(1, round(mark.width * height / mark.height)), height), Image.Resampling.LANCZOS
        )
    alpha = mark.getchannel("A").point(lambda a: round(a * delivery.watermark_opacity))
    mark.putalpha(alpha)
    x, y = watermark_origin(image.size, mark.size, delivery)
    canvas = image.convert("RGBA")
    canvas.alpha_composite(mark, dest=(x, y))
    return canvas.convert(image.mode if image.mode in ("RGB", "RGBA") else "RGB"), True


def watermark_origin(size: tuple[int, int], mark: tuple[int, int], delivery) -> tuple[int, int]:
    """The top-left corner of the mark for the delivery's position and margin."""
    width, height = size
    margin = round(delivery.watermark_margin * min(width, height))
    position = delivery.watermark_position
    if position == "centre":
        return (width - mark[0]) // 2, (height - mark[1]) // 2
    x = margin if position.endswith("left") else width - mark[0] - margin
    y = margin if position.startswith("top") else height - mark[1] - margin
    return max(0, min(x, width - mark[0])), max(0, min(y, height - mark[1]))


def _text_mark(text: str, width: int) -> Image.Image:
    probe = ImageFont.load_default(size=_PROBE_SIZE)
    left, _, right, _ = probe.getbbox(text)
    size = max(6, round(_PROBE_SIZE * width / max(1, right - left)))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 18)
    box = font.getbbox(text, stroke_width=stroke)
    mark = Image.new("RGBA", (box[2] - box[0], box[3] - box[1]), (0, 0, 0, 0))
    ImageDraw.Draw(mark).text(
        (-box[0], -box[1]),
        text,
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 255),
    )
    return mark


def _logo_mark(name: str, width: int) -> Image.Image:
    logo = _logo(name)
    height = max(1, round(logo.height * width / logo.width))
    return logo.resize((width, height), Image.Resampling.LANCZOS)


@lru_cache(maxsize=8)
def _logo(name: str) -> Image.Image:
    """The stored logo (re-encoded as PNG when uploaded; a new upload gets a new name)."""
    if not name:
        raise ValueError("the watermark is a logo but no logo is stored")
    try:
        with default_storage.open(name, "rb") as handle:
            logo = Image.open(handle, formats=["PNG"])
            logo.load()
    except OSError as exc:
        raise ValueError(f"the watermark logo {name} cannot be read ({exc})") from None
    return logo.convert("RGBA")


def watermark_logo_check(upload) -> bytes:
    """A logo upload, validated like every image upload (PNG, JPEG or WebP only, at most
    MAX_LOGO_BYTES, decompression bombs refused, SVG refused), re-encoded as PNG with its
    transparency kept. Raises InputError("watermark_logo", ...)."""
    from review.quality.images import load_image

    data = upload.read(MAX_LOGO_BYTES + 1)
    if len(data) > MAX_LOGO_BYTES:
        raise InputError("watermark_logo", f"larger than {MAX_LOGO_BYTES // 2**20} MB")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype")) or b"<svg" in head:
        raise InputError("watermark_logo", "SVG is not accepted: upload a PNG, JPEG or WebP")
    try:
        # The same safe opening as every upload (formats listed, bombs refused); it flattens
        # transparency, so the checked bytes are opened once more to keep the alpha.
        load_image(io.BytesIO(data))
    except ValueError as exc:
        raise InputError("watermark_logo", str(exc).split(": ", 1)[-1]) from None
    with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
        if max(image.size) > MAX_LOGO_SIDE:
            raise InputError(
                "watermark_logo", f"{image.width}x{image.height} is over {MAX_LOGO_SIDE} px"
            )
        logo = image.convert("RGBA")
    buffer = io.BytesIO()
    logo.save(buffer, format="PNG")
    return buffer.getvalue()
