"""Benchmark: quality scoring throughput per core.

1. The heuristic scorers exactly as the quality job calls them (``score_image`` on a decoded
   RGB image: sharpness, exposure, contrast, blockiness, saturation, blank/black/noise), plus
   the perceptual hash used for style and near-duplicates, at 512² and 1024², on one thread.
   Target: >= 50 images/s/core at 1024².
2. The whole quality stage without CLIP, as ``review.services.scoring`` runs it minus the
   database (``score_image``, the perceptual hash, dominant colours, the content rules and
   ``decide``), at 1024², on one core: without the content detector, and with it (NudeNet's
   bundled ONNX model on onnxruntime, one thread). Target: >= 15 images/s/core with it.
3. CLIP scoring (``ClipScorer.score``: image embedding, prompt and unwanted-concept
   similarities) at batch 1 against batch 16, with the tiny open_clip config built by the
   project (default) or a configured model (``--clip-model ViT-B-32 --clip-pretrained
   /path/to/open_clip_pytorch_model.bin``).

    python bench/quality.py
    python bench/quality.py --images 64 --rounds 5

Needs no database or Redis. Prints figures; a benchmark is not a test.
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
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_unused")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")


def _images(size: int, count: int):
    """Busy synthetic scenes (shapes, lines, text, gradients), different per index."""
    import cv2
    import numpy as np
    from PIL import Image

    images = []
    for index in range(count):
        rng = np.random.default_rng(index)
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        img = np.dstack(
            [60 + 120 * x / size, 80 + 100 * y / size, 170 - 80 * (x + y) / (2 * size)]
        ).astype(np.uint8)
        for _ in range(40):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
            cv2.rectangle(img, (x0, y0), ((x0 + x1) // 2, (y0 + y1) // 2), colour, -1)
            cv2.line(img, (x0, y1), (x1, y0), colour, 3, cv2.LINE_AA)
        cv2.putText(img, f"Studio {index}", (size // 8, size // 2), 0, size / 400, (20, 20, 20), 2)
        images.append(Image.fromarray(img))
    return images


def bench_heuristics(sizes: list[int], count: int, rounds: int) -> None:
    import cv2

    from review.quality import score_image
    from review.quality.similarity import phash_hex

    cv2.setNumThreads(1)
    print(f"Heuristic scorers, 1 thread, {count} images x {rounds} rounds (median round):")
    for size in sizes:
        images = _images(size, count)
        score_image(images[0])  # warm-up
        for label, work in (
            ("score_image", lambda im: score_image(im)),
            ("score_image + phash", lambda im: (score_image(im), phash_hex(im))),
        ):
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                for image in images:
                    work(image)
                times.append(time.perf_counter() - start)
            per_image = statistics.median(times) / count
            print(
                f"  {size:>4}²  {label:<20} {1 / per_image:7.1f} images/s/core "
                f"({per_image * 1000:.1f} ms/image)"
            )


def bench_stage(size: int, count: int, rounds: int) -> None:
    import cv2

    from review.quality import add_content, decide, default_policy, score_image
    from review.quality.content import (
        ContentUnavailable,
        ScreenResult,
        content_detector,
        default_content_rules,
    )
    from review.quality.palette import dominant_colours
    from review.quality.similarity import phash_hex

    cv2.setNumThreads(1)
    try:
        detector = content_detector()
    except ContentUnavailable as exc:
        print(f"Quality stage: content detector unavailable ({exc}); skipped")
        return
    policy, rules = default_policy(), default_content_rules("product-photo")
    images = _images(size, count)

    def stage(image, screen: bool) -> None:
        card = score_image(image)
        add_content(card, detector.detect(image) if screen else ScreenResult(), rules)
        phash_hex(image)
        dominant_colours(image)
        decide(card, **policy)

    print(f"Quality stage without CLIP, 1 thread, {count} images x {rounds} rounds at {size}²:")
    figures = {}
    for label, screen in (("without the detector", False), ("with the detector", True)):
        stage(images[0], screen)  # warm-up
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for image in images:
                stage(image, screen)
            times.append(time.perf_counter() - start)
        per_image = statistics.median(times) / count
        figures[label] = 1 / per_image
        print(f"  {label:<22} {1 / per_image:7.1f} images/s/core ({per_image * 1000:.1f} ms/image)")
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for image in images:
            detector.detect(image)
        times.append(time.perf_counter() - start)
    print(f"  the detector alone     {statistics.median(times) / count * 1000:7.1f} ms/image")
    goal = "meets" if figures["with the detector"] >= 15 else "misses"
    print(f"  with the detector: {goal} the goal of 15 images/s/core")


def bench_clip(args: argparse.Namespace) -> None:
    try:
        import torch
    except ImportError:
        print("CLIP: skipped (torch not installed)")
        return
    from review.quality.clip import TINY_CLIP_NAME, ClipScorer, build_tiny_clip

    torch.set_num_threads(args.threads)
    if args.clip_model:
        scorer = ClipScorer(
            model_name=args.clip_model, pretrained=args.clip_pretrained, threads=args.threads
        )
        name = f"{args.clip_model} ({args.clip_pretrained or 'random weights'})"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            config, checkpoint = build_tiny_clip(tmp)
            scorer = ClipScorer(
                model_name=TINY_CLIP_NAME,
                pretrained=str(checkpoint),
                config=str(config),
                threads=args.threads,
            )
        name = f"{TINY_CLIP_NAME} (tiny random-weight config)"
    images = _images(512, args.clip_images)
    prompts = [f"a studio photo number {i}" for i in range(len(images))]
    unwanted = [["text", "watermark", "extra fingers"]] * len(images)
    print(f"CLIP {name}, {args.threads} thread(s), {len(images)} images at 512²:")
    results = {}
    for batch in (1, 16):
        scorer.score(
            images[:batch], prompts=prompts[:batch], unwanted=unwanted[:batch], batch_size=batch
        )  # warm-up
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            scorer.score(images, prompts=prompts, unwanted=unwanted, batch_size=batch)
            times.append(time.perf_counter() - start)
        results[batch] = len(images) / statistics.median(times)
        print(f"  batch {batch:>2}: {results[batch]:7.1f} images/s")
    print(f"  batch 16 / batch 1: {results[16] / results[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="images per heuristic round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--clip-images", type=int, default=32)
    parser.add_argument("--clip-model", default="", help="open_clip model name (default: tiny)")
    parser.add_argument("--clip-pretrained", default="", help="pretrained tag or checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for CLIP")
    parser.add_argument("--no-clip", action="store_true")
    parser.add_argument("--no-stage", action="store_true", help="skip the whole-stage figures")
    args = parser.parse_args()

    import django

    django.setup()
    bench_heuristics(args.sizes, args.images, args.rounds)
    if not args.no_stage:
        bench_stage(1024, args.images, args.rounds)
    if not args.no_clip:
        bench_clip(args)


if __name__ == "__main__":
    main()
