"""A CSV's platform column: each row is made in its platform's size."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.services import campaign_plan, campaign_submit
from generation.sizes import platform_channel
from studio.errors import InputError
from tests.conftest import fixture_csv
from tests.generation.test_pages import HTMX, form_data

SOCIAL_TEMPLATE = "a {tone} social post about {theme} featuring {product}"


@pytest.fixture
def social_template(db):
    from generation.services import prompt_template_version_create

    return prompt_template_version_create(name="social-post", body=SOCIAL_TEMPLATE)


@pytest.fixture
def social_recipe(base_model):
    from generation.services import recipe_create

    # 512 px: the fixture's 64 px recipe is too small to reframe for tiktok.
    return recipe_create(name="social", base_model=base_model, width=512, height=512)


@pytest.fixture
def social_csv() -> bytes:
    return fixture_csv("social_posts.csv")


def plan(template, recipe, csv: bytes, **kwargs):
    return campaign_plan(template_version=template, recipe=recipe, csv_bytes=csv, **kwargs)


def social_rows(*platforms: str) -> bytes:
    lines = ["post_id,platform,theme,product,tone"]
    lines += [f"S-{i},{p},sale,Aero Runner,bold" for i, p in enumerate(platforms, start=1)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("platform", "channel"),
    [
        ("instagram", "instagram"),
        (" TikTok ", "tiktok"),
        ("Tik Tok", "tiktok"),
        ("IG", "instagram"),
        ("Linked In", "linkedin"),
        ("web_thumbnail", "web-thumbnail"),
        ("1500x500", "1500x500"),
    ],
)
def test_a_platform_names_its_channel_or_an_alias_of_it(platform, channel):
    assert platform_channel(platform) == channel


def test_an_unknown_platform_is_refused_naming_the_known_ones():
    with pytest.raises(InputError) as error:
        platform_channel("Facebook")
    assert error.value.messages() == [
        "csv: 'Facebook' is not a platform with a known size (known: instagram, "
        "instagram-portrait, tiktok, linkedin, web-thumbnail; or write a size as WIDTHxHEIGHT)"
    ]


def test_each_row_of_social_posts_is_made_in_its_platforms_size(
    social_template, social_recipe, social_csv
):
    campaign = campaign_submit(
        name="Social",
        template_version=social_template,
        recipe=social_recipe,
        csv_bytes=social_csv,
        variations=2,
        base_seed=1,
    )

    items = campaign.items.order_by("row_index", "variation")
    assert [(i.row_index, i.channel, i.target_width, i.target_height) for i in items] == [
        (0, "instagram", 1080, 1080),
        (0, "instagram", 1080, 1080),
        (1, "tiktok", 1080, 1920),
        (1, "tiktok", 1080, 1920),
        (2, "linkedin", 1200, 627),
        (2, "linkedin", 1200, 627),
        (3, "instagram", 1080, 1080),
        (3, "instagram", 1080, 1080),
        (4, "tiktok", 1080, 1920),
        (4, "tiktok", 1080, 1920),
    ]
    tiktok = items.filter(channel="tiktok").first()
    assert (tiktok.params["width"], tiktok.params["height"]) == (384, 680)
    assert campaign.channels == ["instagram", "tiktok", "linkedin"]


def test_channels_chosen_for_the_campaign_are_made_for_every_row_besides_its_platform(
    social_template, social_recipe, social_csv
):
    result = plan(social_template, social_recipe, social_csv, channels=["instagram"])

    assert [[o.channel for o in outputs] for outputs in result.row_outputs] == [
        ["instagram"],
        ["instagram", "tiktok"],
        ["instagram", "linkedin"],
        ["instagram"],
        ["instagram", "tiktok"],
    ]
    assert result.item_count == 8
    assert result.channels == ["instagram", "tiktok", "linkedin"]


def test_a_row_without_a_platform_gets_the_campaigns_size(social_template, social_recipe):
    result = plan(social_template, social_recipe, social_rows("tiktok", "", "Tik Tok"))

    assert [[(o.channel, o.size) for o in outputs] for outputs in result.row_outputs] == [
        [("tiktok", (384, 680))],
        [("", (512, 512))],
        [("tiktok", (384, 680))],
    ]
    assert (result.width, result.height) == (512, 512)
    assert result.sizes() == ["tiktok 1080×1920: 2 rows", "512×512: 1 row"]


def test_the_plan_counts_rows_per_size_in_words(social_template, social_recipe, social_csv):
    result = plan(social_template, social_recipe, social_csv, channels=["1500x500"])

    assert result.sizes() == [
        "1500×500: 5 rows",
        "instagram 1080×1080: 2 rows",
        "tiktok 1080×1920: 2 rows",
        "linkedin 1200×627: 1 row",
    ]


def test_an_unknown_platform_is_a_row_and_column_error(social_template, social_recipe):
    with pytest.raises(InputError) as error:
        plan(social_template, social_recipe, social_rows("instagram", "myspace", "fax"))

    assert error.value.fields == {"csv"}
    assert [e.message for e in error.value.errors] == [
        "row 2, column 'platform': 'myspace' is not a platform with a known size (known: "
        "instagram, instagram-portrait, tiktok, linkedin, web-thumbnail; or write a size as "
        "WIDTHxHEIGHT)",
        "row 3, column 'platform': 'fax' is not a platform with a known size (known: "
        "instagram, instagram-portrait, tiktok, linkedin, web-thumbnail; or write a size as "
        "WIDTHxHEIGHT)",
    ]


def test_a_platform_the_rows_recipe_cannot_make_is_a_row_error(social_template, recipe):
    with pytest.raises(InputError) as error:
        plan(social_template, recipe, social_rows("instagram", "tiktok"))

    assert error.value.messages() == [
        "csv: row 2, column 'platform': catalogue v1 cannot make tiktok (1080x1920 would need "
        "48x88, outside the 64-2048 px the model supports)"
    ]


def test_the_preview_shows_the_rows_per_platform_size(
    client, creative, social_template, social_recipe, social_csv
):
    client.force_login(creative)
    data = form_data(social_template, social_recipe, social_csv, variations=1)
    data["csv_file"].name = "social_posts.csv"

    fragment = client.post(reverse("generation:campaign_preview"), data, **HTMX).content.decode()

    assert "5 images" in fragment
    assert (
        "Sizes: instagram 1080×1080: 2 rows, tiktok 1080×1920: 2 rows, linkedin 1200×627: 1 row"
    ) in fragment
