"""AUTOMATIC1111's web UI API (``--api``): ``/sdapi/v1/sd-models`` and ``/sdapi/v1/txt2img``.

- The checkpoint is chosen per request with ``override_settings.sd_model_checkpoint``, after
  checking that the server has it (``sd-models`` lists ``title``, ``model_name``, ``hash`` — the
  first 10 hex digits of the sha256 — and ``sha256``).
- LoRAs are ``<lora:name:weight>`` tags appended to the prompt; ``name`` is the file's stem,
  which is how the server's Lora folder names it.
- One call makes ``batch_size`` images with seeds seed, seed+1, ...; ``info`` (a JSON string)
  lists ``all_seeds`` and the ``sd_model_hash`` that really ran. A result made by another
  model than the pinned one is refused.
- Optional HTTP basic auth (the server's ``--api-auth user:password``).
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from generation.backends import (
    BackendError,
    GeneratedImage,
    ImageRequest,
    LoraSpec,
    ModelSpec,
    http,
)

WHAT = "AUTOMATIC1111"


def _config() -> tuple[str, dict[str, str]]:
    from django.conf import settings

    url = (getattr(settings, "STUDIO_A1111_URL", "") or "").rstrip("/")
    if not url:
        raise BackendError(f"{WHAT}: STUDIO_A1111_URL is not set", retryable=False)
    headers = {"Accept": "application/json"}
    user = getattr(settings, "STUDIO_A1111_USER", "")
    if user:
        headers |= http.basic_auth(user, getattr(settings, "STUDIO_A1111_PASSWORD", ""))
    return url, headers


def checkpoint(model: ModelSpec) -> dict:
    """The server's entry for the pinned checkpoint; refuses a missing or different one."""
    url, headers = _config()
    response = http.request("GET", f"{url}/sdapi/v1/sd-models", what=WHAT, headers=headers)
    models = response.json(what=f"{WHAT} sd-models")
    if not isinstance(models, list):
        raise BackendError(f"{WHAT}: sd-models did not return a list", retryable=True)
    wanted = model.source
    entry = next(
        (
            m
            for m in models
            if isinstance(m, dict)
            and wanted in (m.get("title"), m.get("model_name"), Path(m.get("filename") or "").name)
        ),
        None,
    )
    if entry is None:
        names = ", ".join(str(m.get("title")) for m in models[:10] if isinstance(m, dict))
        raise BackendError(
            f"{WHAT}: the server has no checkpoint {wanted!r} (it has: {names or 'none'})"
        )
    pinned = model.sha256.lower()
    if pinned:
        full, short = (entry.get("sha256") or "").lower(), (entry.get("hash") or "").lower()
        if (full and full != pinned) or (not full and short and short != pinned[:10]):
            raise BackendError(
                f"{WHAT}: checkpoint {wanted!r} on the server has hash {full or short}, "
                f"not the pinned {pinned[:10]}...; register a new model version"
            )
    return entry


def _runs(requests: list[ImageRequest]) -> list[list[int]]:
    """Consecutive requests that one txt2img call can make: same prompt and parameters and
    consecutive seeds (A1111 gives image i of a batch the seed ``seed + i``)."""
    runs: list[list[int]] = []
    for index, request in enumerate(requests):
        if runs:
            last = requests[runs[-1][-1]]
            same = (
                last.prompt,
                last.negative_prompt,
                last.width,
                last.height,
                last.steps,
                last.guidance_scale,
                last.scheduler,
            ) == (
                request.prompt,
                request.negative_prompt,
                request.width,
                request.height,
                request.steps,
                request.guidance_scale,
                request.scheduler,
            )
            if same and request.seed == last.seed + 1:
                runs[-1].append(index)
                continue
        runs.append([index])
    return runs


def prompt_with_loras(prompt: str, loras: list[LoraSpec]) -> str:
    tags = " ".join(f"<lora:{Path(lora.path).stem}:{lora.weight:g}>" for lora in loras)
    return f"{prompt} {tags}".strip()


def generate(
    model: ModelSpec, loras: list[LoraSpec], requests: list[ImageRequest]
) -> list[GeneratedImage]:
    from PIL import Image

    if not requests:
        return []
    url, headers = _config()
    entry = checkpoint(model)
    expected_hash = (model.sha256[:10] or entry.get("hash") or "").lower()
    host = urlsplit(url).netloc
    results: list[GeneratedImage | None] = [None] * len(requests)
    for run in _runs(requests):
        first = requests[run[0]]
        payload = {
            "prompt": prompt_with_loras(first.prompt, loras),
            "negative_prompt": first.negative_prompt,
            "seed": first.seed,
            "batch_size": len(run),
            "n_iter": 1,
            "steps": first.steps,
            "cfg_scale": first.guidance_scale,
            "width": first.width,
            "height": first.height,
            "override_settings": {"sd_model_checkpoint": entry.get("title") or model.source},
            "send_images": True,
            "save_images": False,
        }
        if first.scheduler:
            payload["sampler_name"] = first.scheduler
        started = time.perf_counter()
        response = http.request(
            "POST",
            f"{url}/sdapi/v1/txt2img",
            what=WHAT,
            body=json.dumps(payload).encode(),
            headers=headers | {"Content-Type": "application/json"},
        )
        data = response.json(what=f"{WHAT} txt2img")
        share = (time.perf_counter() - started) / len(run)
        try:
            images = data["images"]
            info = json.loads(data["info"]) if isinstance(data["info"], str) else data["info"]
            seeds = [int(s) for s in info.get("all_seeds") or [info["seed"]]]
            model_hash = (info.get("sd_model_hash") or "").lower()
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"{WHAT}: unexpected txt2img response ({type(exc).__name__}: {exc})",
                retryable=True,
            ) from exc
        if expected_hash and model_hash != expected_hash:
            raise BackendError(
                f"{WHAT}: the server generated with model hash {model_hash or 'unknown'}, "
                f"not the pinned {expected_hash}; result refused"
            )
        if len(images) < len(run) or len(seeds) < len(run):
            raise BackendError(
                f"{WHAT}: asked for {len(run)} images, got {len(images)} with seeds {seeds}",
                retryable=True,
            )
        for offset, index in enumerate(run):
            if seeds[offset] != requests[index].seed:
                raise BackendError(
                    f"{WHAT}: image {offset} came back with seed {seeds[offset]}, "
                    f"not {requests[index].seed}; result refused"
                )
            try:
                raw = base64.b64decode(images[offset].split(",", 1)[-1], validate=True)
                image = Image.open(io.BytesIO(raw), formats=["PNG", "JPEG", "WEBP"])
                image.load()
            except Exception as exc:
                raise BackendError(
                    f"{WHAT}: image {offset} cannot be decoded ({exc})", retryable=True
                ) from exc
            results[index] = GeneratedImage(
                image=image.convert("RGB"),
                seed=seeds[offset],
                duration_s=share,
                device=f"automatic1111 {host}",
                batch_size=len(run),
                extra={"sd_model_hash": model_hash, "checkpoint": entry.get("title", "")},
            )
    return [r for r in results if r is not None]
