"""Benchmark: images per second through the generation worker path against a bare diffusers loop.

The worker path is what a generation job runs — claim the items (conditional update), one
pipeline call per batch through generation.backends.diffusers, PNG with metadata into storage,
record status, cost and timing — called job by job as RQ would (the RQ dequeue itself and the
enqueue of the scoring jobs are left out, so the benchmark needs no Redis). The bare loop calls
the same model, loaded by diffusers from the same folder, with the same prompts, seeds, batch
and output type (PIL), on the same machine in the same run. Rounds alternate between the two
and the median of each is reported, then batch 1 against batch 4.

With ``--batch-invariant`` the worker path runs with STUDIO_BATCH_INVARIANT on
(generation.backends.batch_invariant); the bare loop is plain diffusers either way, so the
ratio then includes what invariance costs. A third series, the bare loop under the
batch-invariant op mode, prints that cost on its own. Last, a batch of 4 is compared pixel by
pixel with the same images made alone, in both modes.

    python bench/generation.py          # the embedded PostgreSQL/Redis, as manage.py uses
    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/generation.py
    python bench/generation.py --device cuda --arch sd15 --size 512 --steps 30 --images 32

``--arch sd15`` builds a UNet, VAE and text encoder from Stable Diffusion 1.5's configuration
with random weights (same architecture, so the same speed as the real model). It creates a
throwaway database (bench_<name>) from the models and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def build_sd15(out_dir: Path) -> str:
    """A random-weight model with SD 1.5's architecture, saved as a diffusers folder."""
    import torch
    from diffusers import (
        AutoencoderKL,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.tiny import build_tokenizer, sd_scheduler

    if (out_dir / "model_index.json").exists():
        return str(out_dir)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    scheduler = sd_scheduler()
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tokenizer(out_dir / "tokenizer"),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    return str(out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--arch", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--images", type=int, default=16, help="images per round")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64, help="square side in px")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch-invariant",
        action="store_true",
        help="worker path with STUDIO_BATCH_INVARIANT=true (batched equals alone, bit for bit)",
    )
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("STUDIO_TORCH_THREADS", "1"))
    )
    parser.add_argument("--models-dir", default=str(REPO / "var" / "bench-models"))
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["STUDIO_DEVICE"] = args.device
    os.environ["STUDIO_TORCH_THREADS"] = str(args.threads)
    os.environ["STUDIO_BATCH_INVARIANT"] = "true" if args.batch_invariant else "false"
    media = tempfile.mkdtemp(prefix="studio-bench-media-")
    os.environ["STUDIO_MEDIA_ROOT"] = media

    # Like manage.py: the embedded PostgreSQL (and Redis) where no URL is given, so the
    # benchmark runs on a bare machine (a lent GPU has no database server).
    from studio.embedded import ensure_environment, stop_at_exit

    stop_at_exit(ensure_environment())

    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    # A throwaway database built from the models (no migrations), named apart from test runs.
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    default = settings.DATABASES["default"]
    default.setdefault("TEST", {})["NAME"] = f"bench_{default['NAME']}"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run(args)
    finally:
        teardown_databases(old, verbosity=0)


def run(args) -> None:
    import torch
    from diffusers import StableDiffusionPipeline
    from django.conf import settings

    import generation.services as services
    from generation.backends import diffusers as backend
    from generation.backends.batch_invariant import batch_invariant
    from generation.backends.diffusers import _dtype_kwargs
    from generation.models import Item
    from studio import queues

    models_dir = Path(args.models_dir)
    if args.arch == "tiny":
        from generation.demo import ensure_tiny_model

        source = ensure_tiny_model(models_dir / "tiny")["model"]
    else:
        source = build_sd15(models_dir / "sd15-random")

    # No Redis in the measured path: no stage hands work on (the one seam, studio.queues).
    queues.enqueue = lambda *a, **k: None

    base = services.base_model_register(name=f"bench-{args.arch}", source=source)
    recipe = services.recipe_create(
        name="bench",
        base_model=base,
        steps=args.steps,
        width=args.size,
        height=args.size,
        guidance_scale=7.5,
    )
    template = services.prompt_template_version_create(
        name="bench", body="product photo of a {thing}", negative_prompt="blurry"
    )
    csv = ("thing\n" + "\n".join(f"object number {i}" for i in range(args.images))).encode()

    device = "cuda" if args.device.startswith("cuda") else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.set_num_threads(args.threads)
    bare = StableDiffusionPipeline.from_pretrained(
        source, **_dtype_kwargs(dtype), safety_checker=None, requires_safety_checker=False
    ).to(device)
    bare.set_progress_bar_config(disable=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def worker_round(batch: int) -> float:
        settings.STUDIO_BATCH_SIZE_DIFFUSERS = batch
        campaign = services.campaign_submit(
            name="bench", template_version=template, recipe=recipe, csv_bytes=csv, base_seed=1
        )
        jobs: dict[str, list[str]] = {}
        for pk, job_id in campaign.items.values_list("pk", "job_id"):
            jobs.setdefault(job_id, []).append(str(pk))
        sync()
        started = time.perf_counter()
        for ids in jobs.values():
            services.items_generate(item_ids=ids)
        sync()
        elapsed = time.perf_counter() - started
        done = campaign.items.filter(status=Item.Status.SCORING).count()
        assert done == args.images, f"only {done} of {args.images} images were made"
        return args.images / elapsed

    def bare_round(batch: int, invariant: bool = False) -> float:
        prompts = [f"product photo of a object number {i}" for i in range(args.images)]
        sync()
        started = time.perf_counter()
        for start in range(0, len(prompts), batch):
            chunk = prompts[start : start + batch]
            with batch_invariant(invariant):
                bare(
                    prompt=chunk,
                    negative_prompt=["blurry"] * len(chunk),
                    width=args.size,
                    height=args.size,
                    num_inference_steps=args.steps,
                    guidance_scale=7.5,
                    generator=[
                        torch.Generator("cpu").manual_seed(start + i) for i in range(len(chunk))
                    ],
                    output_type="pil",
                )
        sync()
        return args.images / (time.perf_counter() - started)

    batches = [int(b) for b in args.batch_sizes.split(",")]
    print(
        f"device={args.device} arch={args.arch} size={args.size} steps={args.steps} "
        f"images/round={args.images} rounds={args.rounds} threads={args.threads} "
        f"torch={torch.__version__} worker batch-invariant={args.batch_invariant}"
    )
    worker_rate: dict[int, float] = {}
    for batch in batches:
        # Warm-up: loads the backend's pipeline and lets kernels settle; not timed.
        settings.STUDIO_BATCH_SIZE_DIFFUSERS = batch
        bare_round(batch)
        worker_round(batch)
        bare_round(batch, invariant=True)
        bare_rates, worker_rates, invariant_rates = [], [], []
        for _ in range(args.rounds):
            bare_rates.append(bare_round(batch))
            worker_rates.append(worker_round(batch))
            invariant_rates.append(bare_round(batch, invariant=True))
        b, w = statistics.median(bare_rates), statistics.median(worker_rates)
        i = statistics.median(invariant_rates)
        worker_rate[batch] = w
        print(
            f"batch {batch}: bare diffusers {b:.2f} img/s, worker path {w:.2f} img/s, "
            f"ratio {w / b:.3f}; bare batch-invariant {i:.2f} img/s, ratio {i / b:.3f}"
        )
    info = backend.cache_info()
    print(f"backend pipeline loads: {info['pipeline_loads']} (one per run: no reloads)")
    if 1 in worker_rate and 4 in worker_rate:
        print(f"worker path batch 4 vs batch 1: {worker_rate[4] / worker_rate[1]:.2f}x")
    check_batches(backend, source, args)


def check_batches(backend, source: str, args) -> None:
    """Whether each image of a batch of 4 has the pixels it has alone, in both modes."""
    import numpy as np

    from generation.backends import ImageRequest, ModelSpec

    model = ModelSpec(key=f"bench-{args.arch}:1", source=source)
    requests = [
        ImageRequest(
            prompt=f"product photo of a object number {i}",
            negative_prompt="blurry",
            seed=100 + i,
            width=args.size,
            height=args.size,
            steps=args.steps,
            guidance_scale=7.5,
        )
        for i in range(4)
    ]
    for invariant in (True, False):
        batched = backend.generate(model, [], requests, batch_invariant=invariant)
        same, worst = 0, 0
        for request, result in zip(requests, batched, strict=True):
            (alone,) = backend.generate(model, [], [request], batch_invariant=invariant)
            diff = np.abs(
                np.asarray(result.image, dtype=np.int16) - np.asarray(alone.image, dtype=np.int16)
            )
            same += int(diff.max() == 0)
            worst = max(worst, int(diff.max()))
        print(
            f"batch-invariant={invariant}: {same}/4 images of a batch of 4 identical to the "
            f"image made alone (largest pixel difference {worst}/255)"
        )


if __name__ == "__main__":
    main()
