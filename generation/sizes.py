"""Output channels and the generation size a model can make for each (pure functions).

A channel's exact size (1080×1920, 1200×627...) is rarely one a model generates well or at
all: SD models want sides in multiples of 8 (the VAE) near their native area, and Stability's
API only takes an aspect ratio. So an item is generated at the nearest size the backend
supports, with the same aspect ratio and about the recipe's area, and records the channel's
size; delivery crops or resizes to it.
"""

from __future__ import annotations

import math
import re

from studio.errors import InputError

CHANNELS: dict[str, tuple[int, int]] = {
    "instagram": (1080, 1080),
    "instagram-portrait": (1080, 1350),
    "tiktok": (1080, 1920),
    "linkedin": (1200, 627),
    "web-thumbnail": (400, 400),
}
_CUSTOM = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# What a CSV's platform column may say for a channel, besides the channel's own name.
PLATFORM_ALIASES: dict[str, str] = {
    "ig": "instagram",
    "insta": "instagram",
    "tik-tok": "tiktok",
    "reels": "tiktok",
    "instagram-reels": "tiktok",
    "ig-portrait": "instagram-portrait",
    "linked-in": "linkedin",
    "web": "web-thumbnail",
    "thumbnail": "web-thumbnail",
    "web-thumb": "web-thumbnail",
}
MIN_SIDE, MAX_SIDE = 64, 2048
# Farther from square than this, SD models repeat subjects or fall apart.
MAX_ASPECT = 4.0
MULTIPLE = {"diffusers": 8, "automatic1111": 8, "stability": 64}


def channel_size(channel: str) -> tuple[int, int]:
    """The delivery size of a named channel or of a custom ``WIDTHxHEIGHT``."""
    channel = channel.strip().lower()
    if channel in CHANNELS:
        return CHANNELS[channel]
    match = _CUSTOM.match(channel)
    if not match:
        names = ", ".join(CHANNELS)
        raise InputError("channels", f"{channel!r} is not one of {names} nor WIDTHxHEIGHT")
    width, height = int(match[1]), int(match[2])
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise InputError("channels", f"{channel} is outside 16-8192 px")
    return width, height


def platform_channel(platform: str) -> str:
    """The channel a CSV row's platform names (``"Tik Tok"`` -> ``"tiktok"``; aliases in
    PLATFORM_ALIASES) or a custom ``WIDTHxHEIGHT`` as written. Raises InputError("csv", ...)
    for anything else; the caller adds the row."""
    name = re.sub(r"[\s_]+", "-", platform.strip().lower())
    name = PLATFORM_ALIASES.get(name, name)
    if name in CHANNELS or _CUSTOM.match(name):
        return name
    raise InputError(
        "csv",
        f"{platform.strip()!r} is not a platform with a known size (known: "
        f"{', '.join(CHANNELS)}; or write a size as WIDTHxHEIGHT)",
    )


def check_size(width: int, height: int, *, field: str) -> None:
    """Refuse a size a model cannot generate: each side within MIN_SIDE-MAX_SIDE px and a
    multiple of 8 (the VAE downsamples by 8). Raises InputError(field, ...)."""
    for label, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InputError(field, f"{label} {value} is outside {MIN_SIDE}-{MAX_SIDE} px")
        if value % 8:
            raise InputError(field, f"{label} {value} is not a multiple of 8")


def generation_size(
    target_width: int, target_height: int, *, native_width: int, native_height: int, backend: str
) -> tuple[int, int]:
    """The size to generate for a target size: its aspect ratio at about the native area,
    sides rounded to the backend's multiple. Raises InputError when the model cannot do it."""
    ratio = target_width / target_height
    if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
        raise InputError(
            "channels",
            f"{target_width}x{target_height} is more elongated than "
            f"{MAX_ASPECT:g}:1; the model cannot generate it (crop a wider image instead)",
        )
    multiple = MULTIPLE.get(backend, 8)
    area = native_width * native_height
    height = math.sqrt(area / ratio)
    width = height * ratio
    width = max(multiple, round(width / multiple) * multiple)
    height = max(multiple, round(height / multiple) * multiple)
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise InputError(
                "channels",
                f"{target_width}x{target_height} would need {width}x{height}, "
                f"outside the {MIN_SIDE}-{MAX_SIDE} px the model supports",
            )
    return width, height
