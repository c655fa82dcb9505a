"""Opening image files safely and bringing any image mode to 8-bit RGB."""

from __future__ import annotations

import os
import warnings
from typing import IO

import numpy as np
from PIL import Image


def load_image(path: str | os.PathLike[str] | IO[bytes]) -> Image.Image:
    """Open an image file (a path or a binary file object) safely; return it loaded, as RGB.

    Only PNG, JPEG and WEBP are parsed (Pillow would otherwise try every decoder it has on
    untrusted bytes), and a decompression bomb is an error rather than a warning. Any failure
    is a ValueError whose message names the file.
    """
    name = getattr(path, "name", None) or path
    try:
        # catch_warnings is process-global, not thread-safe; the explicit size check below
        # refuses a bomb even when another thread has changed the filters meanwhile.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=["PNG", "JPEG", "WEBP"]) as image:
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and image.width * image.height > limit:
                    raise Image.DecompressionBombError(
                        f"{image.width}x{image.height} pixels is more than {limit}"
                    )
                image.load()
                return to_rgb(image)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{name}: is a directory, not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(f"{name}: image too large ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{name}: not a PNG, JPEG or WEBP image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt data surfaces as OSError (or SyntaxError from some plugins).
        raise ValueError(f"{name}: unreadable image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any mode; transparency is flattened onto white, as a cut-out is shown, and
    16- or 32-bit grey is scaled to 8 bits (Pillow's own conversion clips it to white)."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode.startswith("I") or image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or pixels.max(initial=0) > 255:
            pixels = pixels / 257.0
        grey = np.clip(np.nan_to_num(pixels), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")
