"""Backend requests built from an item's pinned versions and parameters."""

from __future__ import annotations

from generation.backends import ImageRequest, LoraSpec, ModelSpec


def model_spec(base_model) -> ModelSpec:
    return ModelSpec(
        key=f"{base_model.name}:{base_model.version}",
        source=base_model.source,
        sha256=base_model.sha256,
    )


def lora_specs(pinned: list[dict]) -> list[LoraSpec]:
    return [
        LoraSpec(
            name=f"{lora['name']}:{lora['version']}",
            path=lora["file"],
            weight=lora["weight"],
            sha256=lora["sha256"],
        )
        for lora in pinned
    ]


def image_request(item) -> ImageRequest:
    return ImageRequest(
        prompt=item.prompt,
        negative_prompt=item.negative_prompt,
        seed=item.seed,
        width=item.params["width"],
        height=item.params["height"],
        steps=item.params["steps"],
        guidance_scale=item.params["guidance_scale"],
        scheduler=item.params.get("scheduler", ""),
    )
