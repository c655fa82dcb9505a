"""Provenance written into the generated PNG itself."""

from __future__ import annotations

import io
import json


def png_with_metadata(image, item) -> bytes:
    """PNG bytes with the prompt and every parameter in text chunks (A1111-style + JSON)."""
    from PIL.PngImagePlugin import PngInfo

    params = item.params
    info = PngInfo()
    loras = " ".join(f"<lora:{lora['name']}:{lora['weight']}>" for lora in item.loras)
    info.add_text(
        "parameters",
        f"{item.prompt} {loras}".strip() + f"\nNegative prompt: {item.negative_prompt}\n"
        f"Steps: {params.get('steps')}, CFG scale: {params.get('guidance_scale')}, "
        f"Seed: {item.seed}, Size: {params.get('width')}x{params.get('height')}, "
        f"Model: {item.base_model.name}, Model hash: {item.base_model.sha256[:10]}",
    )
    info.add_text("studio", json.dumps(item.provenance(), sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
