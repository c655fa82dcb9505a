"""CLIP text match and unwanted concepts, with the project's tiny open_clip model."""

from __future__ import annotations

import builtins

import pytest

from review.quality.clip import (
    ClipScorer,
    ClipUnavailable,
    clip_score_images,
    clip_scorer,
)
from review.services import item_score
from tests.conftest import item_as_generated
from tests.review.conftest import make_image

PROMPTS = ["a studio photo of a red sneaker", "a landscape at dawn", "a bowl of fruit"]


def test_without_a_configured_model_clip_is_skipped_with_the_reason(settings) -> None:
    settings.STUDIO_CLIP_MODEL = ""

    (result,) = clip_score_images([make_image("product")], prompts=["shoe"], unwanted=[["text"]])

    assert result.scores == {}
    assert result.skipped == "CLIP scoring skipped: no CLIP model configured (STUDIO_CLIP_MODEL)"


def test_without_open_clip_installed_clip_is_skipped_with_the_reason(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_open_clip(name, *args, **kwargs):
        if name == "open_clip":
            raise ImportError("No module named 'open_clip'", name="open_clip")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open_clip)

    with pytest.raises(ClipUnavailable, match="open_clip/torch not installed"):
        ClipScorer(model_name="ViT-B-32")


def test_a_missing_checkpoint_is_a_reason_naming_the_settings(tiny_clip) -> None:
    tiny_clip.STUDIO_CLIP_PRETRAINED = "/nonexistent/clip.pt"

    (result,) = clip_score_images([make_image("product")], prompts=["shoe"], unwanted=[[]])

    assert "STUDIO_CLIP_PRETRAINED='/nonexistent/clip.pt'" in result.skipped


def test_the_model_loads_once_per_process_from_settings(tiny_clip) -> None:
    assert clip_scorer() is clip_scorer()


def test_scores_are_normalised_and_batching_does_not_change_them(tiny_clip) -> None:
    images = [make_image(name) for name in ("product", "sharp_scene", "washed_out")]
    unwanted = [["text", "watermark"]] * 3

    batched = clip_score_images(images, prompts=PROMPTS, unwanted=unwanted, batch_size=16)
    single = [
        clip_score_images([im], prompts=[p], unwanted=[u], batch_size=1)[0]
        for im, p, u in zip(images, PROMPTS, unwanted, strict=True)
    ]

    for a, b in zip(batched, single, strict=True):
        assert 0.0 <= a.scores["clip_match"] <= 1.0
        assert a.scores["clip_unwanted"] in (0.0, 1.0)
        assert a.measures["clip_similarity"] == pytest.approx(
            b.measures["clip_similarity"], abs=1e-5
        )
        assert a.scores == pytest.approx(b.scores, abs=1e-4)


def test_an_image_that_matches_an_unwanted_concept_better_than_its_prompt_is_flagged(
    tiny_clip,
) -> None:
    # Random weights know no semantics, so rank the texts for this image first: the one it
    # matches best is made the unwanted concept, the one it matches worst the prompt.
    image = make_image("sharp_scene")
    texts = ["text", "watermark", "a red sneaker", "a bowl of fruit", "extra fingers", "a dog"]
    (sims,) = clip_scorer().similarity([image], texts)
    ranked = [t for _, t in sorted(zip(sims, texts, strict=True))]
    worst, best = ranked[0], ranked[-1]

    (flagged,) = clip_score_images([image], prompts=[worst], unwanted=[[best]])
    (clean,) = clip_score_images([image], prompts=[best], unwanted=[[worst]])

    assert flagged.scores["clip_unwanted"] == 0.0
    assert any(
        r.code == "unwanted-concept" and f"matches {best!r} better than the prompt" in r.detail
        for r in flagged.reasons
    )
    assert clean.scores["clip_unwanted"] == 1.0
    assert not any(r.code == "unwanted-concept" for r in clean.reasons)


def test_a_low_prompt_similarity_gives_an_off_prompt_reason(tiny_clip) -> None:
    tiny_clip.STUDIO_CLIP_MATCH_LOW, tiny_clip.STUDIO_CLIP_MATCH_HIGH = 0.98, 0.99

    (result,) = clip_score_images([make_image("product")], prompts=["shoe"], unwanted=[[]])

    assert result.scores["clip_match"] == 0.0
    assert result.reasons[0].code == "off-prompt"
    assert result.reasons[0].detail.startswith("CLIP similarity to the prompt")


def test_the_quality_job_records_clip_scores_with_the_campaigns_unwanted_concepts(
    tiny_clip, campaign
) -> None:
    campaign.quality_policy.unwanted_concepts = ["watermark"]
    campaign.quality_policy.save()
    item = item_as_generated(campaign.items.first())

    result = item_score(item_id=item.pk)

    assert {"clip_match", "clip_unwanted"} <= set(result.scores)
    assert "clip_unwanted_max" in result.measures
    assert result.notes == []


def test_the_quality_job_notes_when_clip_was_skipped(settings, campaign) -> None:
    settings.STUDIO_CLIP_MODEL = ""
    item = item_as_generated(campaign.items.first())

    result = item_score(item_id=item.pk)

    assert "clip_match" not in result.scores
    assert result.notes == ["CLIP scoring skipped: no CLIP model configured (STUDIO_CLIP_MODEL)"]


def test_a_batch_job_scores_its_images_together_and_an_unreadable_one_does_not_stop_the_rest(
    tiny_clip, campaign
) -> None:
    from django.core.files.storage import default_storage

    from generation.models import Item
    from review.jobs import score_items

    items = [item_as_generated(item) for item in campaign.items.all()[:3]]
    default_storage.delete(items[1].image.name)

    with pytest.raises(ValueError, match=str(items[1].pk)):
        score_items([str(item.pk) for item in items])

    statuses = [Item.objects.get(pk=item.pk).status for item in items]
    assert statuses[1] == Item.Status.SCORING  # left for the retry / reconciler
    assert Item.Status.SCORING not in (statuses[0], statuses[2])
    assert "clip_match" in Item.objects.get(pk=items[2].pk).quality.scores


def test_zero_shot_keeps_the_likely_words_most_likely_first() -> None:
    from review.quality.clip import zero_shot

    tags = zero_shot(["shoe", "lamp", "bag"], [0.30, 0.10, 0.295])

    assert [word for word, _ in tags] == ["shoe", "bag"]
    assert tags[0][1] > tags[1][1] >= 0.2
    assert zero_shot(["a", "b", "c", "d", "e", "f"], [0.2] * 6) == []  # nothing stands out


def test_the_quality_job_records_zero_shot_tags_from_the_campaigns_vocabulary(
    tiny_clip, campaign
) -> None:
    tiny_clip.STUDIO_CLIP_TAGS = ["sneaker"]
    campaign.quality_policy.tag_vocabulary = ["lamp"]
    campaign.quality_policy.save()
    item = item_as_generated(campaign.items.first())

    result = item_score(item_id=item.pk)

    words = {tag["tag"] for tag in result.clip_tags}
    assert words and words <= {"sneaker", "lamp"}
    assert all(0.2 <= tag["score"] <= 1.0 for tag in result.clip_tags)
