from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from review.quality import add_content, decide, default_policy, load_image, score_image
from review.quality.content import default_content_rules, screen_images

MakeImage = Callable[[str], Image.Image]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def good_and_blank(image: MakeImage, tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good.png"
    blank = tmp_path / "blank.png"
    image("product").save(good)
    image("blank").save(blank)
    return good, blank


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("score_images", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_output_is_one_object_per_image_with_the_policy_verdict(
    good_and_blank: tuple[Path, Path],
) -> None:
    good, blank = good_and_blank

    out, err = _run(str(good), str(blank), "--json")

    rows = [json.loads(line) for line in out.splitlines()]
    assert err == ""
    assert [row["path"] for row in rows] == [str(good), str(blank)]
    assert [row["verdict"] for row in rows] == ["approved", "rejected"]
    heuristics = {
        "sharpness",
        "exposure",
        "contrast",
        "blockiness",
        "saturation",
        "noise",
        "banding",
        "framing",
    }
    for row in rows:
        assert {"path", "scores", "verdict", "reasons", "overall", "detections"} <= set(row)
        assert {"reason_codes"} <= set(row)
    # A blank frame is rejected before anything looks for content in it.
    assert set(rows[0]["scores"]) == heuristics | {"content"}
    assert set(rows[1]["scores"]) == heuristics
    assert rows[1]["reasons"][0]["code"] == "blank"
    assert rows[1]["reason_codes"] == ["blank"]


def test_the_command_gives_exactly_what_score_image_and_decide_give(
    good_and_blank: tuple[Path, Path],
) -> None:
    out, _ = _run(*(str(path) for path in good_and_blank), "--json")

    rows = [json.loads(line) for line in out.splitlines()]
    for row, path in zip(rows, good_and_blank, strict=True):
        card = score_image(load_image(path))
        add_content(card, *screen_images([load_image(path)]), default_content_rules())
        decision = decide(card, **default_policy())
        assert row["verdict"] == decision.verdict
        assert row["overall"] == pytest.approx(decision.overall, abs=1e-4)
        assert row["reasons"] == [reason.as_dict() for reason in decision.reasons]
        assert row["scores"] == pytest.approx(card.scores, abs=1e-4)


def test_it_follows_the_thresholds_in_settings(
    image: MakeImage, tmp_path: Path, settings: Any
) -> None:
    washed_out = tmp_path / "washed_out.png"
    image("washed_out").save(washed_out)  # overall about 0.7, contrast 0: review by default
    before = json.loads(_run(str(washed_out), "--json")[0])
    settings.STUDIO_QUALITY_APPROVE_AT = 0.9
    settings.STUDIO_QUALITY_REJECT_BELOW = 0.8

    after = json.loads(_run(str(washed_out), "--json")[0])

    assert before["verdict"] == "review"
    assert after["verdict"] == "rejected"


def test_without_json_it_prints_a_readable_line_per_image(
    good_and_blank: tuple[Path, Path],
) -> None:
    good, blank = good_and_blank

    out, _ = _run(str(good), str(blank))

    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{good}: approved (overall 1.00;")
    assert "no problems found" in lines[0]
    assert lines[1].startswith(f"{blank}: rejected (overall 0.00;")
    assert "The image is blank" in lines[1]


def test_an_unreadable_file_is_reported_and_the_others_are_still_scored(
    good_and_blank: tuple[Path, Path], tmp_path: Path
) -> None:
    good, _ = good_and_blank
    missing = tmp_path / "missing.png"
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really a jpeg")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as raised:
        call_command(
            "score_images", str(missing), str(junk), str(good), "--json", stdout=out, stderr=err
        )

    assert raised.value.returncode == 2
    assert f"{missing}: no such file" in err.getvalue()
    assert f"{junk}: " in err.getvalue()
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == [str(good)]


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    # Explicit URLs: without them manage.py starts the embedded PostgreSQL and Redis.
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "SECRET_KEY": "x",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "score_images", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_prints_json_lines(good_and_blank: tuple[Path, Path]) -> None:
    good, blank = good_and_blank

    result = _manage(str(good), str(blank), "--json")

    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["path"], row["verdict"]) for row in rows] == [
        (str(good), "approved"),
        (str(blank), "rejected"),
    ]


def test_manage_py_exits_2_naming_a_missing_file(
    good_and_blank: tuple[Path, Path], tmp_path: Path
) -> None:
    good, _ = good_and_blank
    missing = tmp_path / "nowhere.png"

    result = _manage(str(good), str(missing), "--json")

    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert json.loads(result.stdout)["path"] == str(good)


def test_with_clip_it_adds_the_clip_scores_in_batches(
    good_and_blank: tuple[Path, Path], tiny_clip: Any
) -> None:
    tiny_clip.STUDIO_CLIP_BATCH_SIZE = 2
    good, blank = good_and_blank

    out, _ = _run(str(good), str(blank), str(good), "--json", "--clip", "--prompt", "a shoe")

    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["path"] for row in rows] == [str(good), str(blank), str(good)]
    assert all({"clip_match", "clip_unwanted"} <= set(row["scores"]) for row in rows)
    assert rows[0]["scores"] == rows[2]["scores"]
    assert all(row["notes"] == [] for row in rows)


def test_with_clip_but_no_model_configured_it_notes_the_skip(
    good_and_blank: tuple[Path, Path], settings: Any
) -> None:
    settings.STUDIO_CLIP_MODEL = ""
    good, _ = good_and_blank

    (row,) = [json.loads(line) for line in _run(str(good), "--json", "--clip")[0].splitlines()]

    assert "clip_match" not in row["scores"]
    assert row["notes"] == ["CLIP scoring skipped: no CLIP model configured (STUDIO_CLIP_MODEL)"]
    assert row["verdict"] == "approved"


# Content screening on the command line


@pytest.fixture
def astronaut(tmp_path: Path) -> Path:
    skimage = pytest.importorskip("skimage")
    pytest.importorskip("onnxruntime")
    path = tmp_path / "astronaut.png"
    Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").save(path)
    return path


def test_it_prints_the_detections_and_reason_codes_under_a_templates_rules(astronaut: Path):
    (product,) = [
        json.loads(line)
        for line in _run(str(astronaut), "--json", "--template", "product-photo")[0].splitlines()
    ]
    (game,) = [
        json.loads(line)
        for line in _run(str(astronaut), "--json", "--template", "game-assets")[0].splitlines()
    ]

    assert product["verdict"] == "review" and product["reason_codes"] == ["person"]
    assert product["basis"]["rule"] == "content"
    ((face),) = product["detections"]
    assert set(face) == {"class", "score", "box"}
    assert face["class"] == "FACE_FEMALE" and 0.65 < face["score"] < 0.8 and len(face["box"]) == 4
    assert game["verdict"] == "approved" and game["reason_codes"] == []
    assert game["detections"] == product["detections"]


def test_the_readable_line_names_what_the_detector_found(astronaut: Path):
    out, _ = _run(str(astronaut), "--template", "product-photo")

    assert out.startswith(f"{astronaut}: review (")
    assert "It shows a person" in out and "[detected: FACE_FEMALE 0.72]" in out


def test_it_judges_with_a_campaigns_policy(astronaut: Path, campaign):
    before = json.loads(_run(str(astronaut), "--json", "--campaign", str(campaign.pk))[0])
    policy = campaign.quality_policy
    policy.content_rules = [r for r in policy.content_rules if r["code"] != "person"]
    policy.save()
    after = json.loads(_run(str(astronaut), "--json", "--campaign", str(campaign.pk))[0])

    assert before["verdict"] == "review" and before["reason_codes"] == ["person"]
    assert after["verdict"] == "approved"


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["not-a-uuid", "00000000-0000-0000-0000-000000000001"])
def test_an_unknown_campaign_exits_2(good_and_blank: tuple[Path, Path], value: str):
    good, _ = good_and_blank

    with pytest.raises(CommandError) as raised:
        _run(str(good), "--campaign", value)

    assert raised.value.returncode == 2
    assert f"--campaign: no campaign {value!r}" in str(raised.value)


def test_a_template_and_a_campaign_together_are_refused(good_and_blank: tuple[Path, Path]):
    good, _ = good_and_blank

    with pytest.raises(CommandError, match="not allowed with argument"):
        _run(str(good), "--template", "product-photo", "--campaign", "x")
