"""A tiny random-weight Stable Diffusion model and two LoRAs, built offline.

No machine here can download weights, so tests and local demos run the real diffusers loading
and sampling code against this model. It has the SD 1.x architecture at toy size: 64x64 images
(32x32 latents, VAE scale factor 2) in well under a second on one CPU thread.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

SEED = 20240601
MODEL_DIRNAME = "model"
LORA_NAMES = ("tiny-style-a", "tiny-style-b")


def _clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """CLIP's BPE vocabulary, rebuilt from the merges file that open_clip ships.

    Same construction as CLIP's own tokenizer: 256 byte symbols, the same with ``</w>``,
    one token per merge (49152 - 256 - 2 of them), then the two special tokens: 49408 in all.
    """
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    bpe_path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    # The first line is a header; CLIP uses exactly this many merges.
    merges = lines[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_tokenizer(out_dir: Path) -> Any:
    """Write vocab.json + merges.txt to ``out_dir`` and return a CLIPTokenizer loaded from them."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab_and_merges()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    return CLIPTokenizer.from_pretrained(str(out_dir), model_max_length=77)


def _components() -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    # One seed before each module, so each one's weights do not depend on the others' sizes.
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(SEED + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=64,
    )
    torch.manual_seed(SEED + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler}


def _lora_state_dict(unet: Any, seed: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights=True,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        ),
        adapter_name="default",
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            # peft starts B at zero (a no-op LoRA); random B makes each LoRA visibly change
            # the image, which is what the tests need to tell them apart.
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    state = get_peft_model_state_dict(unet, adapter_name="default")
    unet.delete_adapters("default")
    return state


def build_tiny_model(out_dir: Path) -> dict[str, Any]:
    """Build the tiny model at ``out_dir/model`` and LoRAs at ``out_dir/loras/<name>.safetensors``.

    Returns ``{"model": str, "loras": {"tiny-style-a": str, "tiny-style-b": str}}``. The same
    seed gives the same bytes on the same library versions, so the sha256 is repeatable.
    """
    import torch
    from diffusers import StableDiffusionPipeline

    out_dir = Path(out_dir)
    model_dir = out_dir / MODEL_DIRNAME
    lora_dir = out_dir / "loras"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    lora_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    parts = _components()
    pipe = StableDiffusionPipeline(
        **parts,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(model_dir), safe_serialization=True)
    # Also keep the plain BPE files beside tokenizer.json so older (slow) tokenizers load it.
    _, merges = _clip_vocab_and_merges()
    build_tokenizer(model_dir / "tokenizer")

    loras: dict[str, str] = {}
    for index, name in enumerate(LORA_NAMES):
        state = _lora_state_dict(parts["unet"], seed=SEED + 100 + index)
        weight_name = f"{name}.safetensors"
        StableDiffusionPipeline.save_lora_weights(
            save_directory=str(lora_dir), unet_lora_layers=state, weight_name=weight_name
        )
        loras[name] = str(lora_dir / weight_name)
    del torch  # only imported to make sure it is present before any work starts
    return {"model": str(model_dir), "loras": loras}
