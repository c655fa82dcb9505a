"""The AUTOMATIC1111 ``parameters`` infotext, read back the way A1111 reads it."""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import pytest
from PIL import Image

from generation.metadata import a1111_sampler, infotext, item_infotext, png_with_metadata

# --- A1111's reader ---------------------------------------------------------------------------
# parse_generation_parameters and unquote from AUTOMATIC1111/stable-diffusion-webui
# modules/infotext_utils.py (v1.9-v1.10; modules/generation_parameters_copypaste.py before),
# with its regular expressions as they are there; only the webui's own defaults for missing
# keys and its prompt-style handling are left out.
re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")
# modules/extra_networks.py: how the webui finds <lora:name:weight> in a prompt.
re_extra_net = re.compile(r"<(\w+):([^>]+)>")


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(x: str) -> dict:
    res = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False

    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""

    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line

    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt

    for k, v in re_param.findall(lastline):
        try:
            if v[0] == '"' and v[-1] == '"':
                v = unquote(v)
            m = re_imagesize.match(v)
            if m is not None:
                res[f"{k}-1"] = m.group(1)
                res[f"{k}-2"] = m.group(2)
            else:
                res[k] = v
        except Exception:
            print(f'Error parsing "{k}: {v}"')
    return res


def loras_in(prompt: str) -> dict[str, str]:
    return {
        args.split(":")[0]: args.split(":")[1]
        for kind, args in re_extra_net.findall(prompt)
        if kind == "lora"
    }


# --- writing ----------------------------------------------------------------------------------

PROMPT = 'a "red", wool hat: Café Crème 猫\nsecond line, with {braces} and (weights:1.2)'
NEGATIVE = 'blurry, "text", watermark\nlowres: jpeg artefacts'


def full_infotext(**overrides) -> str:
    values = dict(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        steps=30,
        sampler="DPM++ 2M",
        schedule_type="Karras",
        cfg_scale=7.5,
        seed=3141592653,
        width=768,
        height=512,
        model_name="sd15-product",
        model_hash="6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
        loras=[
            {"name": "style-a", "weight": 0.8, "hash": "0123456789abcdef" * 4},
            {"name": "film,grain", "weight": 1.0, "hash": "fedcba9876543210" * 4},
        ],
        extra={"Note": 'say "hi", then: go'},
    )
    return infotext(**(values | overrides))


def test_every_field_round_trips_through_a1111s_own_parser():
    parsed = parse_generation_parameters(full_infotext())

    prompt_without_tags = re_extra_net.sub("", parsed["Prompt"]).strip()
    assert prompt_without_tags == PROMPT
    assert loras_in(parsed["Prompt"]) == {"style-a": "0.8", "film,grain": "1"}
    assert parsed["Negative prompt"] == NEGATIVE
    assert parsed["Steps"] == "30"
    assert parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Schedule type"] == "Karras"
    assert parsed["CFG scale"] == "7.5"
    assert parsed["Seed"] == "3141592653"
    assert (parsed["Size-1"], parsed["Size-2"]) == ("768", "512")
    assert parsed["Model hash"] == "6ce0161689"
    assert parsed["Model"] == "sd15-product"
    assert parsed["Lora hashes"] == "style-a: 0123456789ab, filmgrain: fedcba987654"
    assert parsed["Note"] == 'say "hi", then: go'
    assert parsed["Version"].startswith("Studio ")


def test_the_lora_tags_carry_name_and_weight_in_the_prompt():
    text = full_infotext(loras=[{"name": "style-a", "weight": 0.8}, {"name": "b", "weight": 1}])
    prompt_end = text.split("\nNegative prompt:")[0]

    assert prompt_end.endswith("<lora:style-a:0.8> <lora:b:1>")
    assert loras_in(parse_generation_parameters(text)["Prompt"]) == {"style-a": "0.8", "b": "1"}
    assert "Lora hashes" not in text  # no hash known: A1111 writes none either


def test_the_parameter_line_keeps_a1111s_order():
    last = full_infotext().split("\n")[-1]
    keys = [k for k, _ in re_param.findall(last)]

    assert keys[:8] == [
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
    ]
    assert keys[-1] == "Version"
    assert keys.index("Lora hashes") < keys.index("Note") < keys.index("Version")


def test_without_a_negative_prompt_there_is_no_negative_prompt_line():
    text = full_infotext(negative_prompt="", prompt="one line, simple", loras=[])
    parsed = parse_generation_parameters(text)

    assert "Negative prompt:" not in text
    assert text.count("\n") == 1
    assert parsed["Prompt"] == "one line, simple"
    assert parsed["Negative prompt"] == ""


def test_an_unknown_model_hash_is_left_out_and_a_whole_cfg_scale_is_written_as_a1111_does():
    parsed = parse_generation_parameters(full_infotext(model_hash="", cfg_scale=7.0))

    assert "Model hash" not in parsed
    assert parsed["CFG scale"] == "7"


# --- samplers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("EulerAncestralDiscreteScheduler", ("Euler a", "Automatic")),
        ("EulerDiscreteScheduler", ("Euler", "Automatic")),
        ("DPMSolverMultistepScheduler", ("DPM++ 2M", "Uniform")),
        ("DPMSolverSinglestepScheduler", ("DPM++ SDE", "Uniform")),
        ("DDIMScheduler", ("DDIM", "Automatic")),
        ("PNDMScheduler", ("PLMS", "Automatic")),
        ("LMSDiscreteScheduler", ("LMS", "Automatic")),
        ("HeunDiscreteScheduler", ("Heun", "Automatic")),
        ("KDPM2DiscreteScheduler", ("DPM2", "Automatic")),
        ("KDPM2AncestralDiscreteScheduler", ("DPM2 a", "Automatic")),
        ("UniPCMultistepScheduler", ("UniPC", "Automatic")),
        ("DEISMultistepScheduler", ("DEISMultistepScheduler", "Automatic")),
    ],
)
def test_diffusers_schedulers_get_their_a1111_sampler_names(scheduler, expected):
    assert a1111_sampler({"scheduler": scheduler}, backend="diffusers") == expected


def test_karras_sigmas_are_written_as_the_karras_schedule_type():
    params = {"scheduler": "DPMSolverMultistepScheduler", "use_karras_sigmas": True}

    assert a1111_sampler(params, backend="diffusers") == ("DPM++ 2M", "Karras")


def test_the_models_own_scheduler_is_read_from_its_folder(tmp_path):
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": True})
    )

    assert a1111_sampler({"scheduler": ""}, source=str(tmp_path)) == ("Euler", "Karras")
    # A hub id has no local config: SD 1.x's own PNDM, A1111's PLMS.
    assert a1111_sampler({"scheduler": ""}, source="runwayml/stable-diffusion-v1-5") == (
        "PLMS",
        "Automatic",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Euler a", ("Euler a", "Automatic")),
        ("DPM++ 2M Karras", ("DPM++ 2M", "Karras")),
        ("DPM++ 2M SDE Exponential", ("DPM++ 2M SDE", "Exponential")),
        ("DDIM", ("DDIM", "Automatic")),
        ("", ("Euler", "Automatic")),
    ],
)
def test_the_automatic1111_backends_sampler_names_pass_through(name, expected):
    assert a1111_sampler({"scheduler": name}, backend="automatic1111") == expected


# --- items and the generated PNG --------------------------------------------------------------


def fake_item(**params):
    return SimpleNamespace(
        pk="5b0c6a1e-0000-4000-8000-000000000001",
        prompt='studio photo of a "blue", suede boot',
        negative_prompt="blurry, text",
        seed=42,
        params={
            "steps": 20,
            "guidance_scale": 7.0,
            "width": 64,
            "height": 96,
            "scheduler": "EulerAncestralDiscreteScheduler",
            "backend": "diffusers",
        }
        | params,
        run={},
        base_model=SimpleNamespace(
            name="tiny", version=3, source="tiny-model", sha256="ab" * 32, backend="diffusers"
        ),
        loras=[
            {
                "id": 1,
                "name": "style-a",
                "version": 2,
                "file": "/models/loras/style-a-v2.safetensors",
                "sha256": "cd" * 32,
                "weight": 0.6,
            }
        ],
        provenance=lambda: {"item": "5b0c6a1e"},
    )


def test_an_items_infotext_carries_its_pinned_parameters():
    parsed = parse_generation_parameters(item_infotext(fake_item()))

    assert parsed["Negative prompt"] == "blurry, text"
    assert (parsed["Steps"], parsed["Sampler"], parsed["Schedule type"]) == (
        "20",
        "Euler a",
        "Automatic",
    )
    assert (parsed["CFG scale"], parsed["Seed"]) == ("7", "42")
    assert (parsed["Size-1"], parsed["Size-2"]) == ("64", "96")
    assert (parsed["Model"], parsed["Model hash"]) == ("tiny", "abababab" + "ab")
    assert loras_in(parsed["Prompt"]) == {"style-a-v2": "0.6"}
    assert parsed["Lora hashes"] == "style-a-v2: " + "cd" * 6


def test_the_generated_png_has_a_parameters_chunk_a1111_can_read():
    image = Image.new("RGB", (64, 96), (30, 120, 200))

    data = png_with_metadata(image, fake_item(scheduler="DPMSolverMultistepScheduler"))

    with Image.open(io.BytesIO(data)) as png:
        text = png.text["parameters"]
        assert json.loads(png.text["studio"]) == {"item": "5b0c6a1e"}
    assert "Sampler: DPM++ 2M" in text
    parsed = parse_generation_parameters(text)
    assert parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Prompt"].startswith('studio photo of a "blue", suede boot')


def test_a_generated_png_of_a_real_item_names_its_sampler(campaign):
    item = campaign.items.select_related("base_model").first()

    data = png_with_metadata(Image.new("RGB", (64, 64)), item)

    with Image.open(io.BytesIO(data)) as png:
        parsed = parse_generation_parameters(png.text["parameters"])
    assert parsed["Prompt"] == item.prompt
    assert parsed["Sampler"] == "PLMS"  # the hub's SD 1.5: its own PNDM scheduler
    assert parsed["Seed"] == str(item.seed)
    assert parsed["Model"] == item.base_model.name
