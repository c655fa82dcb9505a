"""Benchmark: the delivery stage. Renditions per second per core from a 1024² master into the
five standard channels (watermark and metadata on; then also C2PA signing), and the time and
peak RSS of exporting 1,000 and 5,000 assets.

Needs DATABASE_URL pointing at a PostgreSQL server; it creates its own throwaway database
(studio_bench_delivery) and media folder, and drops them at the end unless --keep.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/delivery.py
    DATABASE_URL=... python bench/delivery.py --rounds 4 --exports 200,1000   # a quick check

Renditions: one asset with a 1024×1024 photographic master (a smooth gradient with a subject
and noise, so encoders work as on a real image), --rounds rounds of the delivery service
``renditions_make`` (crop, LANCZOS resize, text watermark, sRGB profile, A1111 infotext, XMP,
and C2PA when on), each round forced by a new delivery-settings version. Figures are per CPU
second of this one process (time.process_time), so "per core" does not depend on how busy the
machine is; wall time is printed too.

Exports: for each size, a fresh child process builds the export of a campaign of that many
published assets with two renditions each (web-thumbnail WebP, instagram JPEG), through the
same builder the delivery queue runs, and reports its own peak RSS (ru_maxrss): the goal is
the same peak at 1,000 and 5,000 assets (±20 %), i.e. memory that does not grow with the
number of assets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "studio_bench_delivery"
CHANNELS = ["instagram", "instagram-portrait", "tiktok", "linkedin", "web-thumbnail"]
GOAL_PER_CORE = 20.0
GOAL_SIGNING_OVERHEAD = 0.30
GOAL_RSS_SPREAD = 0.20


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_sql(url: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def setup_django(url: str, media: Path) -> None:
    os.environ["DATABASE_URL"] = with_database(url, BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["STUDIO_MEDIA_ROOT"] = str(media)
    os.environ.setdefault("STUDIO_VAR_DIR", str(media.parent / "var"))
    import django

    django.setup()


def master_png(side: int = 1024) -> bytes:
    """A photograph-like master: gradient backdrop, a round subject left of centre, noise."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rgb = np.stack([200 + 40 * x, 190 + 30 * y, 180 + 20 * (x + y) / 2], axis=-1)
    inside = (x - 0.4) ** 2 + (y - 0.55) ** 2 < 0.05
    rgb[inside] = np.stack([150 * x, 60 + 80 * y, 90 + 0 * x], axis=-1)[inside]
    rgb += rng.normal(0, 6, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype("uint8"))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def registry():
    from generation.models import Campaign
    from generation.services import (
        base_model_register,
        prompt_template_version_create,
        recipe_create,
    )

    template = prompt_template_version_create(
        name="bench-product", body="a {name} on a plain backdrop", negative_prompt="blurry"
    )
    model = base_model_register(name="sd15", source="runwayml/stable-diffusion-v1-5")
    recipe = recipe_create(name="bench", base_model=model, steps=20, width=1024, height=1024)
    return template, model, recipe, Campaign


def assets_create(count: int, *, master: bytes, name: str, renditions: dict[str, bytes]):
    """A campaign of ``count`` approved items, each published with its renditions' files.

    Rows are bulk-inserted (this measures delivery, not publishing); files are real."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from catalogue.models import Asset, Rendition
    from generation.models import Item

    template, model, recipe, Campaign = registry()
    campaign = Campaign.objects.create(
        name=name,
        template_version=template,
        recipe=recipe,
        width=1024,
        height=1024,
        csv_columns=["sku", "name", "asset_type"],
        channels=list(renditions),
        status=Campaign.Status.COMPLETED,
    )
    master_name = default_storage.save(f"items/{campaign.pk}/master.png", ContentFile(master))
    items = Item.objects.bulk_create(
        Item(
            campaign=campaign,
            row_index=i,
            variation=0,
            row_data={"sku": f"SKU-{i:05}", "name": f"Product {i}", "asset_type": "prop"},
            prompt=f"a Product {i} on a plain backdrop",
            seed=i,
            params={"width": 1024, "height": 1024, "steps": 20, "guidance_scale": 7.0},
            base_model=model,
            recipe=recipe,
            status=Item.Status.APPROVED,
            image=master_name,
        )
        for i in range(count)
    )
    assets = Asset.objects.bulk_create(
        Asset(
            item=item,
            campaign=campaign,
            title=f"SKU-{item.row_index:05} Product {item.row_index}",
            prompt=item.prompt,
            fields=item.row_data,
            provenance={"item": str(item.pk), "seed": item.seed},
            image=master_name,
            width=1024,
            height=1024,
            approved_by="automatic",
        )
        for item in items
    )
    rows = []
    for asset in assets:
        for channel, data in renditions.items():
            path = f"renditions/{campaign.pk}/{asset.pk}/{channel}.bin"
            Path(default_storage.path(path)).parent.mkdir(parents=True, exist_ok=True)
            Path(default_storage.path(path)).write_bytes(data)
            rows.append(
                Rendition(
                    asset=asset,
                    channel=channel,
                    width=400,
                    height=400,
                    format="webp" if channel == "web-thumbnail" else "jpeg",
                    file=path,
                    bytes=len(data),
                    sha256="0" * 64,
                    fingerprint="bench",
                )
            )
    Rendition.objects.bulk_create(rows, batch_size=2000)
    return campaign, assets


def renditions_measure(rounds: int, *, signing: bool) -> dict:
    from django.conf import settings

    from catalogue.delivery.renditions import renditions_make
    from catalogue.models import Delivery, Rendition

    settings.STUDIO_C2PA = signing
    campaign, (asset,) = assets_create(
        1, master=master_png(), name=f"renditions signing={signing}", renditions={}
    )
    Rendition.objects.filter(asset=asset).delete()
    delivery = Delivery.objects.create(
        campaign=campaign,
        channels=CHANNELS,
        watermark=Delivery.Watermark.TEXT,
        watermark_text="© Studio demo",
        max_upscale=4.0,
    )
    renditions_make(asset_id=asset.pk)  # warm-up: fonts, profiles, the signer
    made = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for round_ in range(rounds):
        Delivery.objects.filter(pk=delivery.pk).update(version=round_ + 2)
        outcome = renditions_make(asset_id=asset.pk)
        made += len(outcome["made"])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    signed = Rendition.objects.filter(asset=asset, signed=True).count()
    return {"made": made, "cpu_s": cpu, "wall_s": wall, "signed": signed}


def export_child(campaign_id: str) -> None:
    """In a fresh process: build the campaign's export as the delivery queue does, print JSON
    with this process's peak RSS (Django set up, nothing else loaded)."""
    from catalogue.delivery.exports import export_build, export_create
    from catalogue.models import Export
    from generation.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    export = export_create(user=None, campaign=campaign, enqueue=False)
    export_build(export_id=export.pk)
    seconds = time.perf_counter() - started
    export = Export.objects.get(pk=export.pk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": export.status,
                "files": export.done,
                "zip_bytes": export.bytes,
                "seconds": seconds,
                "rss_before_kib": before,
                "peak_rss_kib": peak,
            }
        )
    )


def _rendition_bytes(channel: str) -> bytes:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(master_png(1024))).convert("RGB")
    size = (400, 400) if channel == "web-thumbnail" else (1080, 1080)
    buffer = io.BytesIO()
    image.resize(size, Image.LANCZOS).save(
        buffer, format="WEBP" if channel == "web-thumbnail" else "JPEG", quality=88
    )
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="rounds of five renditions")
    parser.add_argument("--exports", default="1000,5000", help="export sizes, comma-separated")
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards")
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    parser.add_argument("--media", help=argparse.SUPPRESS)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL: required (a PostgreSQL server; this creates its own database)")
    if args.export_child:
        setup_django(url, Path(args.media))
        export_child(args.export_child)
        return

    work = Path(tempfile.mkdtemp(prefix="studio-bench-delivery-"))
    media = work / "media"
    admin_sql(
        url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)", f"CREATE DATABASE {BENCH_DB}"
    )
    try:
        setup_django(url, media)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        print(f"Renditions: 1024² master -> {', '.join(CHANNELS)}; {args.rounds} rounds")
        plain = renditions_measure(args.rounds, signing=False)
        signed = renditions_measure(args.rounds, signing=True)
        rows = []
        for label, figures in (("watermark + metadata", plain), ("+ C2PA signing", signed)):
            per_core = figures["made"] / figures["cpu_s"]
            rows.append(per_core)
            print(
                f"  {label:<22} {figures['made']:>4} renditions  {figures['cpu_s']:6.2f} s CPU  "
                f"{figures['wall_s']:6.2f} s wall  {per_core:6.1f} renditions/s/core  "
                f"(signed files: {figures['signed']})"
            )
        overhead = rows[0] / rows[1] - 1
        print(
            f"  goal ≥ {GOAL_PER_CORE:g}/s/core without C2PA: "
            f"{'met' if rows[0] >= GOAL_PER_CORE else 'MISSED'}; signing adds {overhead:.0%} "
            f"(goal ≤ {GOAL_SIGNING_OVERHEAD:.0%}: "
            f"{'met' if overhead <= GOAL_SIGNING_OVERHEAD else 'MISSED'})"
        )
        connections.close_all()

        sizes = [int(n) for n in args.exports.split(",") if n.strip()]
        print(f"Exports (a fresh process each): {', '.join(map(str, sizes))} assets")
        peaks = []
        thumb, square = _rendition_bytes("web-thumbnail"), _rendition_bytes("instagram")
        for size in sizes:
            campaign, _ = assets_create(
                size,
                master=b"not read by exports",
                name=f"export {size}",
                renditions={"web-thumbnail": thumb, "instagram": square},
            )
            connections.close_all()
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--export-child",
                    str(campaign.pk),
                    "--media",
                    str(media),
                ],
                env=os.environ | {"DATABASE_URL": url},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                print(done.stdout, done.stderr)
                sys.exit(f"the export of {size} assets failed")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            peaks.append(figures["peak_rss_kib"])
            print(
                f"  {size:>6} assets  {figures['files']:>6} exported  "
                f"{figures['zip_bytes'] / 2**20:8.1f} MiB zip  {figures['seconds']:7.1f} s  "
                f"peak RSS {figures['peak_rss_kib'] / 1024:6.1f} MiB  {figures['status']}"
            )
        if len(peaks) >= 2:
            spread = max(peaks) / min(peaks) - 1
            print(
                f"  peak RSS of the largest export over the smallest's: "
                f"{spread:.0%} (goal ≤ {GOAL_RSS_SPREAD:.0%}: "
                f"{'met' if spread <= GOAL_RSS_SPREAD else 'MISSED'})"
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_sql(url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)
            print(f"\ndropped {BENCH_DB} and {work}")


if __name__ == "__main__":
    main()
