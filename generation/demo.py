"""The demo registry: the tiny offline model, its two LoRAs, recipe `demo-tiny` and three
templates that fit the sample CSVs in generation/demo_data/."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

DEMO_MODEL = "demo-tiny-sd"
DEMO_RECIPE = "demo-tiny"
DEMO_DATA = Path(__file__).resolve().parent / "demo_data"

TEMPLATES = {
    "product-photo": {
        "description": "E-commerce packshots; fits products.csv.",
        "body": "studio product photo of a {color} {material} {product_type}, {name}, "
        "centered on a plain white background, soft light, high detail",
        "negative_prompt": "blurry, text, watermark, low quality, cropped",
    },
    "game-assets": {
        "description": "Game asset icon variations; fits game_assets.csv.",
        "body": "{rarity} {subject} {asset_type}, {biome} theme, game art, clean silhouette, "
        "centered, item {asset_id}",
        "negative_prompt": "text, watermark, blurry, busy background",
    },
    "social-post": {
        "description": "Social media images per platform; fits social_posts.csv.",
        "body": "{tone} {platform} post image for {product}, {theme}, lifestyle photography",
        "negative_prompt": "text, watermark, logo, low quality",
    },
}


def demo_seed(*, models_dir: Path | None = None) -> dict:
    """Build the tiny model once (if missing) and register everything; safe to run again."""
    from generation.services import (
        base_model_register,
        lora_register,
        prompt_template_version_create,
        recipe_create,
    )

    models_dir = Path(models_dir or settings.STUDIO_MODELS_DIR) / "tiny"
    paths = ensure_tiny_model(models_dir)
    with transaction.atomic():
        model = base_model_register(
            name=DEMO_MODEL, source=str(paths["model"]), cost_per_image="0.0005"
        )
        loras = [
            (lora_register(name=name, file=str(path)), weight)
            for (name, path), weight in zip(sorted(paths["loras"].items()), (0.8, 0.5), strict=True)
        ]
        recipe = recipe_create(
            name=DEMO_RECIPE,
            base_model=model,
            loras=loras,
            steps=4,
            guidance_scale=5.0,
            width=64,
            height=64,
        )
        templates = [
            prompt_template_version_create(name=name, **spec) for name, spec in TEMPLATES.items()
        ]
    return {"model": model, "recipe": recipe, "templates": templates}


def ensure_tiny_model(directory: Path) -> dict:
    from generation.tiny import build_tiny_model, tiny_model_paths

    paths = tiny_model_paths(directory)
    if not all(Path(p).exists() for p in [paths["model"], *paths["loras"].values()]):
        paths = build_tiny_model(directory)
    return paths
