"""Provenance written into the generated PNG itself: the AUTOMATIC1111 ``parameters`` infotext.

The infotext is written the way AUTOMATIC1111's webui writes it (``create_infotext`` in
``modules/processing.py`` of v1.9-v1.10): the prompt (LoRAs as ``<lora:name:weight>`` tags),
``Negative prompt: ...`` on its own line when there is one, then one line of ``Key: value``
pairs in A1111's order -- ``Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash,
Model``, then the extra parameters (``Lora hashes``...) and ``Version``. A value holding a comma,
a colon or a newline is JSON-quoted (``infotext_utils.quote``). Readers (the webui's "PNG
Info", sd-parsers, civitai) split that last line with A1111's own regular expression.

Samplers use the names A1111 >= 1.9 writes: the sampler and its schedule apart
(``Sampler: DPM++ 2M, Schedule type: Karras``, not the older ``DPM++ 2M Karras``).
"""

from __future__ import annotations

import io
import json
import math
from functools import lru_cache
from pathlib import Path

STUDIO_VERSION = "0.1.0"

# diffusers scheduler class (generation/backends/diffusers.py takes these names) -> A1111's
# sampler name, as in diffusers' own "A1111 -> diffusers" table.
A1111_SAMPLERS = {
    "EulerAncestralDiscreteScheduler": "Euler a",
    "EulerDiscreteScheduler": "Euler",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DPMSolverSinglestepScheduler": "DPM++ SDE",
    "DPMSolverSDEScheduler": "DPM++ SDE",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
    "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "UniPCMultistepScheduler": "UniPC",
    "LCMScheduler": "LCM",
}
# A1111 >= 1.9 schedules these with Karras (or exponential) sigmas when the schedule type is
# "Automatic" (sd_samplers_kdiffusion: {'scheduler': 'karras'}); diffusers' plain spacing is
# A1111's "Uniform" (the model's own sigmas), so it is written out for them.
_NOT_UNIFORM_BY_DEFAULT = {"DPM++ 2M", "DPM++ SDE", "DPM++ 2S a", "DPM++ 2M SDE", "DPM++ 3M SDE"}
# A1111's schedule type labels (modules/sd_schedulers.py), as suffixes of old sampler names.
SCHEDULE_TYPES = (
    "Uniform",
    "Karras",
    "Exponential",
    "Polyexponential",
    "SGM Uniform",
    "KL Optimal",
    "Align Your Steps",
    "Simple",
    "Normal",
    "DDIM",
    "Beta",
)
# SD 1.x's own scheduler on the hub; used when a model's scheduler config cannot be read.
_DEFAULT_SCHEDULER = {"_class_name": "PNDMScheduler"}
# What AUTOMATIC1111's txt2img API samples with when no sampler is named (api/models.py).
_A1111_API_DEFAULT_SAMPLER = "Euler"


def quote(value) -> str:
    """A1111's ``infotext_utils.quote``: JSON-quote a value with a comma, newline or colon."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _number(value) -> str:
    # 7.0 is written "7" (as the webui's sliders hand it over), 7.5 as "7.5".
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def split_sampler(name: str) -> tuple[str, str]:
    """An A1111 sampler name into (sampler, schedule type), as A1111's
    ``get_sampler_and_scheduler`` does: "DPM++ 2M Karras" -> ("DPM++ 2M", "Karras")."""
    for label in SCHEDULE_TYPES:
        if name.endswith(" " + label):
            return name[: -len(label) - 1], label
    return name, "Automatic"


def infotext(
    *,
    prompt: str,
    negative_prompt: str,
    steps: int,
    sampler: str,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model_name: str,
    model_hash: str = "",
    loras: list[dict] = (),
    extra: dict | None = None,
    schedule_type: str = "Automatic",
    version: str | None = f"Studio {STUDIO_VERSION}",
) -> str:
    """The ``parameters`` text AUTOMATIC1111 writes for one image.

    ``loras``: ``{"name", "weight"}`` and optionally ``"hash"`` (sha256; A1111 writes the first
    12 hex digits as "Lora hashes"). ``extra``: more ``Key: value`` pairs, written after the
    LoRA hashes as A1111 writes its extension parameters. An empty ``model_hash`` is left out,
    as A1111 leaves out every value that is None.
    """
    tags = " ".join(f"<lora:{lora['name']}:{_number(float(lora['weight']))}>" for lora in loras)
    prompt_text = f"{prompt} {tags}".strip() if tags else prompt
    params: dict[str, object] = {
        "Steps": steps,
        "Sampler": sampler,
        "Schedule type": schedule_type,
        "CFG scale": _number(cfg_scale),
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model hash": model_hash[:10] or None,
        "Model": model_name or None,
    }
    # A1111's Lora extension strips ":" and "," from the alias (extra_networks_lora.py).
    hashes = [
        f"{str(lora['name']).translate(str.maketrans('', '', ':,'))}: {lora['hash'][:12]}"
        for lora in loras
        if lora.get("hash")
    ]
    if hashes:
        params["Lora hashes"] = ", ".join(hashes)
    params.update(extra or {})
    params["Version"] = version
    line = ", ".join(
        key if key == value else f"{key}: {quote(value)}"
        for key, value in params.items()
        if value is not None
    )
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative}\n{line}".strip()


@lru_cache(maxsize=64)
def _scheduler_config(source: str) -> dict:
    """The model's own scheduler config (a diffusers folder), or SD 1.x's default."""
    path = Path(source) / "scheduler" / "scheduler_config.json"
    try:
        if path.is_file():
            config = json.loads(path.read_text())
            if isinstance(config, dict) and isinstance(config.get("_class_name"), str):
                return config
    except (OSError, ValueError):
        pass
    return _DEFAULT_SCHEDULER


def a1111_sampler(params: dict, *, backend: str = "diffusers", source: str = "") -> tuple[str, str]:
    """(A1111 sampler name, schedule type) for an item's pinned parameters.

    The AUTOMATIC1111 backend already takes A1111 sampler names: they pass through (split into
    sampler and schedule type). The diffusers backend takes a diffusers scheduler class name,
    built from the model's own scheduler config (so ``use_karras_sigmas`` there carries over);
    an empty name is the model's own scheduler. A class A1111 has no name for is written as it
    is, rather than as a sampler that did not run.
    """
    name = (params.get("scheduler") or "").strip()
    if backend == "automatic1111":
        return split_sampler(name or _A1111_API_DEFAULT_SAMPLER)
    if backend not in ("diffusers", ""):
        return (name, "Automatic") if name else ("Automatic", "Automatic")
    config = _scheduler_config(source) if source else _DEFAULT_SCHEDULER
    class_name = name or config["_class_name"]
    karras = bool(params.get("use_karras_sigmas", config.get("use_karras_sigmas", False)))
    sampler = A1111_SAMPLERS.get(class_name, class_name)
    if class_name == "DPMSolverMultistepScheduler" and "sde" in str(
        params.get("algorithm_type", config.get("algorithm_type", ""))
    ):
        sampler = "DPM++ 2M SDE"
    if karras:
        return sampler, "Karras"
    return sampler, "Uniform" if sampler in _NOT_UNIFORM_BY_DEFAULT else "Automatic"


def _lora_alias(lora: dict) -> str:
    # A1111 names a LoRA by its file's stem; the AUTOMATIC1111 backend sends it that way.
    file = lora.get("file") or ""
    return Path(file).stem if file else str(lora.get("name", ""))


def item_infotext(item) -> str:
    """The A1111 infotext of a generation Item (prompt, pinned versions and parameters)."""
    params = item.params or {}
    model = item.base_model
    backend = params.get("backend") or model.backend
    sampler, schedule = a1111_sampler(params, backend=backend, source=model.source)
    provider = (item.run or {}).get("provider") or {}
    return infotext(
        prompt=item.prompt,
        negative_prompt=item.negative_prompt,
        steps=params.get("steps"),
        sampler=sampler,
        schedule_type=schedule,
        cfg_scale=params.get("guidance_scale"),
        seed=item.seed,
        width=params.get("width"),
        height=params.get("height"),
        model_name=model.name,
        model_hash=model.sha256 or provider.get("sd_model_hash") or "",
        loras=[
            {"name": _lora_alias(lora), "weight": lora["weight"], "hash": lora.get("sha256", "")}
            for lora in item.loras
        ],
    )


def png_with_metadata(image, item) -> bytes:
    """PNG bytes with the A1111 infotext (``parameters``) and every parameter as JSON."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", item_infotext(item))
    info.add_text("studio", json.dumps(item.provenance(), sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
