"""Local generation with Hugging Face diffusers, one process-wide pipeline cache.

The generation worker runs jobs in its own process (RQ SimpleWorker, see DESIGN.md), so a
model loaded here stays loaded across jobs: ``generate`` loads a base model once per
``ModelSpec.key`` and each LoRA once per pipeline, then only switches adapters and weights.

torch and diffusers are imported inside functions: importing this module stays cheap, and the
web process never needs the ML stack.

Reproducibility: every image gets its own CPU ``torch.Generator`` seeded with its seed, so its
starting noise does not depend on the batch, the device or the other seeds. By default the
pipeline batches its matrix work across images, and MKL/oneDNN/cuBLAS/cuDNN pick kernels by the
shape of the whole batch, so batches of different sizes give slightly different floats (~1e-6;
at most 1/255 in a pixel, in well under 0.1% of pixels on this CPU): such an image reproduces
exactly in a batch of its recorded size (``GeneratedImage.batch_size``). With
``STUDIO_BATCH_INVARIANT`` on, the batch-size-sensitive ops run per image
(generation.backends.batch_invariant), so an image made in a batch has exactly the pixels it
has when made alone, at any batch size, for the price of that batching speed.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.backends import (
    BackendError,
    GeneratedImage,
    ImageRequest,
    LoraSpec,
    ModelSpec,
)
from generation.hashing import iter_files, sha256_path

logger = logging.getLogger(__name__)

# A GPU worker holds one base model: an SD 1.5 pipeline takes ~2.5 GB in fp16 and SDXL ~7 GB,
# and the jobs of one campaign all use the same model, so a second slot would rarely hit.
MAX_PIPELINES = 1
# LoRAs stay loaded in the pipeline (a few MB each) so a recipe switch costs no disk read;
# past this many the least recently used ones are dropped.
MAX_ADAPTERS = 16

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SINGLE_FILE_SUFFIXES = {".safetensors", ".ckpt", ".pt", ".bin"}


@dataclass
class _Loaded:
    spec: ModelSpec
    pipe: Any
    device: str
    default_scheduler: Any
    schedulers: dict[str, Any] = field(default_factory=dict)
    # adapter name -> identity of the file it was loaded from (path, size, mtime), LRU order
    adapters: OrderedDict[str, tuple[str, int, int]] = field(default_factory=OrderedDict)
    lora_enabled: bool = True


_lock = threading.RLock()
_pipelines: OrderedDict[str, _Loaded] = OrderedDict()
_verified: dict[tuple[str, tuple], str] = {}
_counters = {"pipeline_loads": 0, "lora_loads": 0, "hashes": 0, "calls": 0}
_threads_set: int | None = None


# --- public helpers -----------------------------------------------------------------------


def cache_info() -> dict[str, Any]:
    """What is loaded and how often things were loaded or hashed (tests assert reuse)."""
    with _lock:
        return {
            "models": list(_pipelines),
            "pipeline_classes": {key: type(e.pipe).__name__ for key, e in _pipelines.items()},
            "adapters": {key: list(entry.adapters) for key, entry in _pipelines.items()},
            **_counters,
        }


def generate(
    model: ModelSpec,
    loras: list[LoraSpec],
    requests: list[ImageRequest],
    *,
    batch_invariant: bool | None = None,
) -> list[GeneratedImage]:
    """Generate one image per request, in request order.

    Requests that share size, steps, guidance, scheduler and negative prompt run as one batched
    pipeline call; the caller decides how many requests to pass at once (GPU memory).
    ``batch_invariant`` (default: the STUDIO_BATCH_INVARIANT setting) makes each image's pixels
    independent of the batch size; reproduction passes the value the item was made with.
    Raises BackendError: ``retryable=False`` for bad input or a changed/missing file,
    ``retryable=True`` for out-of-memory and network trouble while fetching a hub model.
    """
    if not requests:
        return []
    for request in requests:
        _validate(request)
    _validate_loras(loras)
    with _lock:
        _counters["calls"] += 1
        _configure_torch()
        _verify_file(model.source, model.sha256, what="base model")
        for lora in loras:
            if not Path(lora.path).expanduser().exists():
                raise BackendError(f"LoRA {lora.name}: file not found: {lora.path}")
            _verify_file(lora.path, lora.sha256, what=f"LoRA {lora.name}")
        try:
            entry = _pipeline(model)
            _apply_loras(entry, loras)
            if batch_invariant is None:
                batch_invariant = _flag("STUDIO_BATCH_INVARIANT")
            return _run(entry, requests, batch_invariant=batch_invariant)
        except BackendError:
            raise
        except Exception as exc:
            if _is_oom(exc):
                # Memory may be free again on the next try (another process, a smaller batch).
                _empty_cuda_cache()
                raise BackendError(
                    f"out of memory loading {model.key} or generating {len(requests)} "
                    f"image(s) of {requests[0].width}x{requests[0].height}",
                    retryable=True,
                ) from exc
            raise


# --- validation and hashing -----------------------------------------------------------------


def _validate(request: ImageRequest) -> None:
    for name in ("width", "height"):
        value = getattr(request, name)
        if not isinstance(value, int) or value <= 0 or value % 8:
            raise BackendError(
                f"{name} must be a positive multiple of 8 (the VAE works on 8x8 blocks), "
                f"got {value!r}"
            )
    if not isinstance(request.steps, int) or request.steps < 1:
        raise BackendError(f"steps must be at least 1, got {request.steps!r}")
    if request.guidance_scale < 0:
        raise BackendError(f"guidance_scale must not be negative, got {request.guidance_scale}")
    # torch.Generator.manual_seed takes a 64-bit value; outside it the seed would wrap.
    if not isinstance(request.seed, int) or not 0 <= request.seed < 2**64:
        raise BackendError(f"seed must be an integer in [0, 2**64), got {request.seed!r}")


def _validate_loras(loras: list[LoraSpec]) -> None:
    names = [_adapter_name(lora.name) for lora in loras]
    if len(set(names)) != len(names):
        raise BackendError(f"the same LoRA is listed twice: {[lora.name for lora in loras]}")


def _fingerprint(path: Path) -> tuple:
    # Size and mtime of every hashed file: cheap to stat on each call, and any rewrite of a
    # file changes it, so a verified hash is reused only for untouched files.
    if path.is_file():
        st = path.stat()
        return ((path.name, st.st_size, st.st_mtime_ns),)
    return tuple(
        (p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in iter_files(path)
    )


def _verify_file(source: str, expected: str, *, what: str) -> None:
    """Refuse a local file or folder whose sha256 is not the registered one."""
    if not expected:
        return
    path = Path(source).expanduser()
    if not path.exists():
        if _HUB_ID.match(source):
            return  # a hub id: its files live in the HF cache, pinned by revision, not by us
        raise BackendError(f"{what}: file not found: {source}")
    key = (str(path.resolve()), _fingerprint(path))
    actual = _verified.get(key)
    if actual is None:
        actual = sha256_path(path)
        _counters["hashes"] += 1
        _verified[key] = actual
    if actual != expected.lower():
        raise BackendError(
            f"{what}: {source} has changed since it was registered "
            f"(sha256 {actual[:12]}..., expected {expected[:12]}...); register a new version"
        )


# --- torch, devices and loading -------------------------------------------------------------


def _flag(name: str) -> bool:
    """A boolean Studio setting; outside Django, the environment read by studio.env's rules."""
    value = _setting(name, "")
    if value in ("True", "False"):
        return value == "True"
    from studio.env import env_bool

    return env_bool(name, default=False)


def _setting(name: str, default: str) -> str:
    """A Studio setting from django.conf.settings when Django is set up, else the environment."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        try:
            value = getattr(settings, name, None)
        except ImproperlyConfigured:
            value = None
    except ImportError:
        value = None
    if value is None:
        value = os.environ.get(name, default)
    return str(value)


def _configure_torch() -> None:
    global _threads_set
    import torch

    threads = int(_setting("STUDIO_TORCH_THREADS", "1"))
    # Workers share a machine with other workers; torch's default (all cores) oversubscribes.
    if threads != _threads_set:
        torch.set_num_threads(max(1, threads))
        _threads_set = threads


def _device() -> tuple[str, Any]:
    import torch

    wanted = _setting("STUDIO_DEVICE", "auto").strip().lower() or "auto"
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            # Another worker of the queue may have a GPU: let the job be retried.
            raise BackendError(f"STUDIO_DEVICE={wanted} but CUDA is not available", retryable=True)
        return wanted, torch.float16
    return wanted, torch.float32


def _device_label(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    return device


def _pipeline(spec: ModelSpec) -> _Loaded:
    entry = _pipelines.get(spec.key)
    if entry is not None and entry.spec.source == spec.source:
        _pipelines.move_to_end(spec.key)
        return entry
    while _pipelines and len(_pipelines) >= MAX_PIPELINES:
        _pipelines.popitem(last=False)
        _empty_cuda_cache()
    _pipelines.pop(spec.key, None)
    device, dtype = _device()
    started = time.monotonic()
    pipe = _load(spec.source, dtype)
    pipe.to(device)
    # SDPA (torch's fused attention) is already diffusers' default processor on torch 2.
    pipe.set_progress_bar_config(disable=True)
    _counters["pipeline_loads"] += 1
    logger.info(
        "loaded %s from %s on %s in %.1fs",
        spec.key,
        spec.source,
        device,
        time.monotonic() - started,
    )
    entry = _Loaded(
        spec=spec, pipe=pipe, device=_device_label(device), default_scheduler=pipe.scheduler
    )
    _pipelines[spec.key] = entry
    return entry


def _load(source: str, dtype: Any) -> Any:
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    path = Path(source).expanduser()
    try:
        if path.is_file():
            return _load_single_file(path, dtype)
        if not path.exists() and not _HUB_ID.match(source):
            raise BackendError(f"base model: not a local file or folder nor a hub id: {source}")
        location = str(path) if path.exists() else source
        kwargs = _dtype_kwargs(dtype)
        config = DiffusionPipeline.load_config(location)
        if "safety_checker" in config:
            # Screening is the quality stage's job (CLIP unwanted concepts, human review); the
            # SD safety checker would blacken images silently and costs ~1 GB of GPU memory.
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        return AutoPipelineForText2Image.from_pretrained(location, **kwargs)
    except BackendError:
        raise
    except Exception as exc:
        raise _load_error(source, exc) from exc


def _load_single_file(path: Path, dtype: Any) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if _is_sdxl_checkpoint(path) else StableDiffusionPipeline
    kwargs = _dtype_kwargs(dtype)
    if cls is StableDiffusionPipeline:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return cls.from_single_file(str(path), **kwargs)


def _dtype_kwargs(dtype: Any) -> dict[str, Any]:
    # diffusers 0.42 renamed torch_dtype to dtype (the old name warns); older ones lack dtype.
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return {"torch_dtype": dtype}
    renamed = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
    return {"dtype" if renamed else "torch_dtype": dtype}


def _is_sdxl_checkpoint(path: Path) -> bool:
    # SDXL checkpoints carry a second text encoder under "conditioner.embedders.1";
    # reading the safetensors header is enough, no weights are loaded.
    if path.suffix != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return any(key.startswith("conditioner.embedders.1.") for key in fh.keys())


def _load_error(source: str, exc: Exception) -> BackendError:
    try:
        from huggingface_hub.errors import (
            GatedRepoError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:  # pragma: no cover - huggingface_hub always comes with diffusers
        permanent: tuple[type[BaseException], ...] = ()
        offline: tuple[type[BaseException], ...] = ()
    else:
        permanent = (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError)
        permanent += (HFValidationError,)
        offline = (LocalEntryNotFoundError,)
    message = f"base model {source}: could not load: {type(exc).__name__}: {exc}"
    if isinstance(exc, offline):
        return BackendError(message, retryable=True)  # no network and not cached (yet)
    if isinstance(exc, permanent):
        return BackendError(message, retryable=False)
    # Other OSErrors are mostly network or disk trouble; a bad folder raises ValueError & co.
    return BackendError(message, retryable=isinstance(exc, OSError))


def _empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


# --- LoRAs ----------------------------------------------------------------------------------


def _adapter_name(name: str) -> str:
    # peft keeps adapters in ModuleDicts, whose keys may not contain "."; the registry's
    # "name:version" maps to "name_version" (names are slugs, so this cannot collide).
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "lora"


def _apply_loras(entry: _Loaded, loras: list[LoraSpec]) -> None:
    pipe = entry.pipe
    if not loras:
        if entry.adapters and entry.lora_enabled:
            pipe.disable_lora()
            entry.lora_enabled = False
        return
    names = []
    for lora in loras:
        name = _adapter_name(lora.name)
        path = Path(lora.path).expanduser()
        st = path.stat()
        identity = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if entry.adapters.get(name) != identity:
            if name in entry.adapters:
                # Same name, different file (an unpinned LoRA edited in place): reload it.
                pipe.delete_adapters([name])
                del entry.adapters[name]
            _evict_adapters(entry, keep={_adapter_name(x.name) for x in loras})
            try:
                with warnings.catch_warnings():
                    # Several adapters in one model is exactly what we want; peft warns anyway.
                    warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                    pipe.load_lora_weights(str(path), adapter_name=name)
            except Exception as exc:
                raise BackendError(
                    f"LoRA {lora.name}: cannot be applied to base model {entry.spec.key}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _counters["lora_loads"] += 1
            entry.adapters[name] = identity
        entry.adapters.move_to_end(name)
        names.append(name)
    if not entry.lora_enabled:
        pipe.enable_lora()
        entry.lora_enabled = True
    pipe.set_adapters(names, adapter_weights=[float(lora.weight) for lora in loras])


def _evict_adapters(entry: _Loaded, keep: set[str]) -> None:
    while len(entry.adapters) >= MAX_ADAPTERS:
        victim = next((name for name in entry.adapters if name not in keep), None)
        if victim is None:
            return
        entry.pipe.delete_adapters([victim])
        del entry.adapters[victim]


# --- sampling -------------------------------------------------------------------------------


def _scheduler(entry: _Loaded, name: str) -> Any:
    if not name:
        return entry.default_scheduler
    if name not in entry.schedulers:
        import diffusers

        cls = getattr(diffusers, name, None)
        if not (
            isinstance(cls, type)
            and issubclass(cls, diffusers.SchedulerMixin)
            and name.endswith("Scheduler")
        ):
            raise BackendError(f"unknown scheduler {name!r} (a diffusers scheduler class name)")
        # From the model's own config, so betas and prediction type stay the model's.
        entry.schedulers[name] = cls.from_config(entry.default_scheduler.config)
    return entry.schedulers[name]


def _run(
    entry: _Loaded, requests: list[ImageRequest], *, batch_invariant: bool
) -> list[GeneratedImage]:
    import torch

    from generation.backends.batch_invariant import batch_invariant as invariant_ops

    groups: dict[tuple, list[int]] = {}
    for index, request in enumerate(requests):
        key = (
            request.width,
            request.height,
            request.steps,
            float(request.guidance_scale),
            request.scheduler,
            request.negative_prompt,
        )
        groups.setdefault(key, []).append(index)

    results: list[GeneratedImage | None] = [None] * len(requests)
    pipe = entry.pipe
    for (width, height, steps, guidance, scheduler, negative), indexes in groups.items():
        pipe.scheduler = _scheduler(entry, scheduler)
        batch = [requests[i] for i in indexes]
        # CPU generators: the starting noise of a seed is the same on every device and in
        # any batch (randn_tensor draws one latent per generator).
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in batch]
        started = time.perf_counter()
        with invariant_ops(batch_invariant):
            output = pipe(
                prompt=[r.prompt for r in batch],
                negative_prompt=[negative] * len(batch),
                width=width,
                height=height,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generators,
                output_type="pil",
            )
        share = (time.perf_counter() - started) / len(batch)
        for i, request, image in zip(indexes, batch, output.images, strict=True):
            results[i] = GeneratedImage(
                image=image,
                seed=request.seed,
                duration_s=share,
                device=entry.device,
                batch_size=len(batch),
                batch_invariant=batch_invariant,
            )
    return [r for r in results if r is not None]
