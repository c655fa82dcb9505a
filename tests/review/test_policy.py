from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from review.quality import Decision, ScoreCard, decide, default_policy, explain, score_image
from review.vocabulary import Reason
from studio.errors import InputError

MakeImage = Callable[[str], Image.Image]

BLURRY = Reason("blur", "The subject is blurry.", "subject sharpness 3.2, needs 89")
BLANK = Reason("blank", "The image is blank.", "channel std 0.0")
EQUAL = {"sharpness": 1.0, "exposure": 1.0, "contrast": 1.0}


def _card(
    sharpness: float = 1.0,
    exposure: float = 1.0,
    contrast: float = 1.0,
    *,
    reasons: list[Reason] | None = None,
    hard_fail: bool = False,
) -> ScoreCard:
    return ScoreCard(
        scores={"sharpness": sharpness, "exposure": exposure, "contrast": contrast},
        measures={},
        reasons=list(reasons or []),
        hard_fail=hard_fail,
    )


def _decide(card: ScoreCard, **overrides: Any) -> Decision:
    policy: dict[str, Any] = {"approve_at": 0.7, "reject_below": 0.4, "weights": EQUAL}
    policy.update(overrides)
    return decide(card, **policy)


# Routing real scores with the site policy


@pytest.mark.parametrize("name", ["sharp_scene", "soft_scene", "product"])
def test_good_images_are_approved(image: MakeImage, name: str) -> None:
    decision = decide(score_image(image(name)), **default_policy())

    assert decision.verdict == "approved"


@pytest.mark.parametrize(
    "name",
    ["blurred_scene", "blurred_product", "washed_out", "overexposed", "underexposed"],
)
def test_defective_images_are_not_approved(image: MakeImage, name: str) -> None:
    decision = decide(score_image(image(name)), **default_policy())

    assert decision.verdict in {"review", "rejected"}
    # The card says what is wrong, not only which threshold decided.
    assert decision.reasons


@pytest.mark.parametrize("name", ["blank", "black", "noise"])
def test_blank_black_and_noise_frames_are_rejected(image: MakeImage, name: str) -> None:
    decision = decide(score_image(image(name)), **default_policy())

    assert decision.verdict == "rejected"
    assert decision.overall == 0.0
    assert decision.basis["rule"] == "hard_fail"
    assert decision.reasons[0].code in {"blank", "noise"}


def test_the_default_policy_comes_from_settings(settings: Any) -> None:
    settings.STUDIO_QUALITY_APPROVE_AT = 0.9
    settings.STUDIO_QUALITY_REJECT_BELOW = 0.2
    settings.STUDIO_QUALITY_WEIGHTS = EQUAL | {"clip_match": 2.0}

    assert default_policy() == {
        "approve_at": 0.9,
        "reject_below": 0.2,
        "weights": EQUAL | {"clip_match": 2.0},
    }


# The rule itself


def test_overall_is_the_weighted_mean_of_the_weighted_scores() -> None:
    decision = _decide(
        _card(sharpness=0.5, exposure=1.0, contrast=0.0),
        weights={"sharpness": 2.0, "exposure": 1.0, "contrast": 1.0},
    )

    assert decision.overall == pytest.approx((2 * 0.5 + 1.0 + 0.0) / 4)


def test_scores_without_a_weight_or_with_weight_zero_do_not_count() -> None:
    card = _card(sharpness=0.8, exposure=0.0, contrast=0.0)

    only_sharpness = _decide(card, weights={"sharpness": 1.0})
    zero_weights = _decide(card, weights={"sharpness": 1.0, "exposure": 0.0, "contrast": 0})

    assert only_sharpness.overall == pytest.approx(0.8)
    assert zero_weights.overall == pytest.approx(0.8)


def test_a_weighted_score_the_card_lacks_is_skipped() -> None:
    decision = _decide(_card(sharpness=0.6), weights={"sharpness": 1.0, "clip_match": 5.0})

    assert decision.overall == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("score", "verdict"),
    [
        (0.95, "approved"),
        (0.70, "approved"),  # at approve_at: approved
        (0.69, "review"),
        (0.40, "review"),  # at reject_below: not yet rejected
        (0.39, "rejected"),
        (0.0, "rejected"),
    ],
)
def test_the_thresholds_route_the_overall_score(score: float, verdict: str) -> None:
    decision = _decide(_card(score, score, score))

    assert decision.verdict == verdict


def test_a_hard_failure_is_rejected_even_with_perfect_scores() -> None:
    decision = _decide(_card(reasons=[BLANK], hard_fail=True))

    assert decision.verdict == "rejected"
    assert decision.reasons == [BLANK]
    assert "blank, black or noise" in explain(decision.basis)


def test_the_reasons_are_the_cards_and_the_rule_that_decided_is_kept_apart() -> None:
    card = _card(sharpness=0.0, reasons=[BLURRY])

    decision = _decide(card)

    assert decision.verdict == "review"
    assert decision.reasons == [BLURRY]
    assert decision.basis == {
        "rule": "weak_score",
        "overall": 0.666667,
        "approve_at": 0.7,
        "reject_below": 0.4,
        "weak": ["sharpness"],
    }
    assert card.reasons == [BLURRY]  # not mutated
    assert _decide(_card()).basis["rule"] == "above"
    assert _decide(_card(0, 0, 0)).basis["rule"] == "below"
    assert _decide(_card(0.5, 0.5, 0.5)).basis["rule"] == "between"
    assert explain(_decide(_card()).basis) == (
        "Approved automatically: overall score 1.00 is at least 0.70."
    )


# Validation


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"approve_at": 1.5}, "approve_at", "must be between 0 and 1"),
        ({"approve_at": float("nan")}, "approve_at", "must be between 0 and 1"),
        ({"approve_at": "0.7"}, "approve_at", "must be a number"),
        ({"approve_at": True}, "approve_at", "must be a number"),
        ({"reject_below": -0.1}, "reject_below", "must be between 0 and 1"),
        ({"reject_below": None}, "reject_below", "must be a number"),
        ({"reject_below": 0.8, "approve_at": 0.7}, "reject_below", "0.8 is above approve_at 0.7"),
        ({"weights": {"sharpness": -1.0}}, "weights", "'sharpness' must be a finite number"),
        ({"weights": {"sharpness": "high"}}, "weights", "'sharpness' must be a number"),
        ({"weights": {"sharpnes": 1.0}}, "weights", "must give a positive weight"),
        ({"weights": {"sharpness": 0.0}}, "weights", "must give a positive weight"),
        ({"weights": {}}, "weights", "must give a positive weight"),
    ],
)
def test_it_refuses_a_bad_policy_naming_the_field(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InputError) as error:
        _decide(_card(), **overrides)
    assert error.value.fields == {field}
    assert message in error.value.errors[0].message


def test_equal_thresholds_are_allowed_and_leave_no_review_band() -> None:
    assert _decide(_card(0.5, 0.5, 0.5), approve_at=0.5, reject_below=0.5).verdict == "approved"
    assert _decide(_card(0.49, 0.49, 0.49), approve_at=0.5, reject_below=0.5).verdict == (
        "rejected"
    )


def test_one_weak_score_keeps_an_image_from_auto_approval_however_good_the_rest():
    from review.quality import ScoreCard, decide

    card = ScoreCard(
        scores={"sharpness": 0.21, "exposure": 1.0, "contrast": 1.0},
        measures={},
        reasons=[BLURRY],
        hard_fail=False,
    )
    decision = decide(
        card,
        approve_at=0.7,
        reject_below=0.4,
        weights={"sharpness": 1.0, "exposure": 1.0, "contrast": 1.0},
    )
    assert decision.overall >= 0.7
    assert decision.verdict == "review"
    assert decision.basis["weak"] == ["sharpness"]
    assert "One weak score keeps an image from automatic approval" in explain(decision.basis)
