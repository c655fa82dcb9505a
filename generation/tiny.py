"""A tiny random-weight Stable Diffusion model and two LoRAs, built offline.

No machine here can download weights, so tests and the demo run the real diffusers loading and
sampling code against this model. It has the SD 1.x architecture at toy size: 64x64 images
(32x32 latents, VAE scale factor 2) in a fraction of a second on one CPU thread.

Layout under ``out_dir``::

    model/                      diffusers folder (register this as the base model ``source``)
    loras/tiny-style-a.safetensors   register these single files as the LoRA ``file``
    loras/tiny-style-b.safetensors
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

SEED = 20240601
LORA_NAMES = ("tiny-style-a", "tiny-style-b")
# CLIP's vocabulary: 256 byte symbols, the same with "</w>", one token per merge, 2 specials.
_N_MERGES = 49152 - 256 - 2
VOCAB_SIZE = 256 * 2 + _N_MERGES + 2  # 49408, as in every SD 1.x text encoder


def tiny_model_paths(out_dir: str | Path) -> dict[str, Any]:
    """Where :func:`build_tiny_model` puts things under ``out_dir`` (whether built or not)."""
    out_dir = Path(out_dir)
    return {
        "model": str(out_dir / "model"),
        "loras": {name: str(out_dir / "loras" / f"{name}.safetensors") for name in LORA_NAMES},
    }


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP's reversible byte -> printable character table (as in open_clip.tokenizer);
    # inlined so building the tokenizer does not import all of open_clip and torchvision.
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_bpe_path() -> Path:
    """open_clip's bundled BPE merges file (found without importing the package)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is not installed; it ships CLIP's BPE vocabulary")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """CLIP's token -> id table and merge list, rebuilt the way CLIP's own tokenizer does."""
    with gzip.open(clip_bpe_path()) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = lines[1 : _N_MERGES + 1]  # line 0 is a header
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_tokenizer(out_dir: Path) -> Any:
    """Write vocab.json + merges.txt to ``out_dir`` and return a CLIPTokenizer loaded from them.

    The plain BPE files stay beside the tokenizer.json that save_pretrained writes later, so
    both fast (tokenizers) and slow tokenizer classes can load the folder.
    """
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    return CLIPTokenizer.from_pretrained(str(out_dir), model_max_length=77)


def _components() -> dict[str, Any]:
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    # A seed before each module, so one module's weights do not depend on another's size.
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
    vae = _tiny_vae()
    torch.manual_seed(SEED + 2)
    text_encoder = CLIPTextModel(_tiny_text_config())
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": sd_scheduler()}


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
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


def _tiny_text_config() -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE,
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


def sd_scheduler() -> Any:
    """SD 1.x's own scheduler settings; DDIM with eta=0 adds no noise during sampling."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def _lora_state_dict(unet: Any, seed: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]),
        adapter_name="tiny",
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            # peft starts B at zero, a LoRA that changes nothing; random B makes each LoRA
            # visibly change the image, which is what tests need to tell them apart.
            if ".lora_B." in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    state = {k: v.clone() for k, v in get_peft_model_state_dict(unet, adapter_name="tiny").items()}
    unet.delete_adapters("tiny")
    return state


def build_tiny_model(out_dir: str | Path) -> dict[str, Any]:
    """Build the tiny model and its two LoRAs under ``out_dir`` (see the module docstring).

    Returns ``{"model": str, "loras": {"tiny-style-a": str, "tiny-style-b": str}}``. Fixed
    seeds give the same bytes on the same library versions, so the sha256 is repeatable.
    """
    from diffusers import StableDiffusionPipeline

    paths = tiny_model_paths(out_dir)
    model_dir = Path(paths["model"])
    if model_dir.exists():
        shutil.rmtree(model_dir)
    tokenizer = build_tokenizer(model_dir / "tokenizer")
    parts = _components()
    pipe = StableDiffusionPipeline(
        **parts,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(model_dir), safe_serialization=True)

    for index, path in enumerate(paths["loras"].values()):
        lora_path = Path(path)
        lora_path.parent.mkdir(parents=True, exist_ok=True)
        StableDiffusionPipeline.save_lora_weights(
            save_directory=str(lora_path.parent),
            unet_lora_layers=_lora_state_dict(parts["unet"], seed=SEED + 100 + index),
            weight_name=lora_path.name,
        )
    return paths


def build_tiny_sdxl_model(out_dir: str | Path) -> dict[str, Any]:
    """The SDXL architecture at toy size (two text encoders, pooled and size conditioning),
    with one LoRA, under ``out_dir``: ``{"model": str, "loras": {"tiny-xl-style": str}}``.

    It checks that the SDXL path of the diffusers backend (and the turbo models, which share
    it) loads, batches and reproduces like SD 1.x.
    """
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    out_dir = Path(out_dir)
    model_dir = out_dir / "model"
    lora_path = out_dir / "loras" / "tiny-xl-style.safetensors"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    torch.manual_seed(SEED + 10)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop ids + pooled text
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=32,
    )
    torch.manual_seed(SEED + 11)
    vae = _tiny_vae()
    torch.manual_seed(SEED + 12)
    text_encoder = CLIPTextModel(_tiny_text_config())
    torch.manual_seed(SEED + 13)
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_text_config())
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=build_tokenizer(model_dir / "tokenizer"),
        tokenizer_2=build_tokenizer(model_dir / "tokenizer_2"),
        unet=unet,
        scheduler=sd_scheduler(),
    )
    pipe.save_pretrained(str(model_dir), safe_serialization=True)
    lora_path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(
        save_directory=str(lora_path.parent),
        unet_lora_layers=_lora_state_dict(unet, seed=SEED + 110),
        weight_name=lora_path.name,
    )
    return {"model": str(model_dir), "loras": {"tiny-xl-style": str(lora_path)}}
