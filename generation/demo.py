"""The demo registry: the tiny offline model, its two LoRAs, recipe `demo-tiny` and three
templates that fit the sample CSVs in generation/demo_data/, each with a preset (PRESETS):
LoRAs named for their role (an e-commerce style, a brand style, two game-art styles), a
recipe per workflow and a variation matrix file (``<csv>.matrix.json``) where it has one."""

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


# LoRAs named for their role: tiny random LoRAs (the tiny model's own two, re-drawn with
# their own seed so each one changes the image its own way) -> (source LoRA, seed).
ROLE_LORAS = {
    "ecommerce-clean": ("tiny-style-a", 11),
    "brand-warm": ("tiny-style-b", 12),
    "game-painterly": ("tiny-style-a", 13),
    "game-pixel": ("tiny-style-b", 14),
}
# What each template is made with: its recipe (LoRAs and weights), its output sizes and its
# variation matrix (a file next to the CSV, for ``campaign_create --matrix``).
PRESETS = {
    "product-photo": {
        "csv": "products.csv",
        "recipe": "demo-product",
        "channels": ["web-thumbnail", "instagram"],
        "matrix": None,
    },
    "game-assets": {
        "csv": "game_assets.csv",
        "recipe": "demo-game",
        "channels": [],
        "matrix": "game_assets.matrix.json",  # 20 seeds × 4 LoRA weight sets per row
    },
    "social-post": {
        "csv": "social_posts.csv",
        "recipe": "demo-social",
        "channels": [],  # each row's platform column picks its size
        "matrix": "social_posts.matrix.json",  # A/B: demo-social v1 against v2, same seeds
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
        role = {
            name: lora_register(name=name, file=str(path))
            for name, path in role_loras(models_dir, paths).items()
        }
        small = {"base_model": model, "steps": 4, "width": 64, "height": 64}
        social = small | {"width": 128, "height": 128}
        presets = [
            _recipe_version(
                "demo-product",
                1,
                loras=[(role["ecommerce-clean"], 0.8)],
                guidance_scale=5.0,
                **small,
            ),
            _recipe_version("demo-game", 1, guidance_scale=6.0, **small),
            # The social A/B pair: the brand LoRA at two strengths (v2 is the active one).
            # 128 px: the tiny model makes every platform's shape (tiktok 9:16 needs 72×128).
            _recipe_version("demo-social", 1, loras=[(role["brand-warm"], 0.6)], **social),
            _recipe_version(
                "demo-social", 2, loras=[(role["brand-warm"], 1.0)], guidance_scale=6.0, **social
            ),
        ]
    return {
        "model": model,
        "recipe": recipe,
        "templates": templates,
        "loras": list(role.values()),
        "recipes": presets,
    }


def _recipe_version(name: str, version: int, **spec):
    """Recipe ``name`` at ``version``: the stored one, else made now (seeding twice adds none)."""
    from generation.models import Recipe
    from generation.services import recipe_create

    existing = Recipe.objects.filter(name=name, version=version).first()
    return existing or recipe_create(name=name, **spec)


def role_loras(models_dir: Path, paths: dict) -> dict[str, Path]:
    """The role LoRA files, made once from the tiny model's LoRAs: the same layers, their B
    matrices drawn again from each role's seed (numpy only: seeding stays fast)."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    out = {}
    for name, (source, seed) in ROLE_LORAS.items():
        target = Path(models_dir) / "loras" / f"{name}.safetensors"
        out[name] = target
        if target.exists():
            continue
        rng = np.random.default_rng(seed)
        with safe_open(paths["loras"][source], framework="np") as handle:
            metadata = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        for key in sorted(tensors):
            if ".lora_B." in key:
                shape = tensors[key].shape
                tensors[key] = (rng.standard_normal(shape) * 0.5).astype(tensors[key].dtype)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(target), metadata=metadata)
    return out


def preset_matrix(template: str) -> dict:
    """The variation matrix preset for a demo template ({} when it has none)."""
    import json

    name = PRESETS[template]["matrix"]
    return json.loads((DEMO_DATA / name).read_text(encoding="utf-8")) if name else {}


def ensure_tiny_model(directory: Path) -> dict:
    from generation.tiny import build_tiny_model, tiny_model_paths

    paths = tiny_model_paths(directory)
    if not all(Path(p).exists() for p in [paths["model"], *paths["loras"].values()]):
        paths = build_tiny_model(directory)
    return paths
