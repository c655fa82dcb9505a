"""Bad input, swept: every case gets a clear 4xx naming the problem, and nothing is written.

CSV size and row limits (page and API); images that are decompression bombs, truncated, of
another type behind the right extension, or SVG, on every image upload (a campaign's style
references, a delivery's watermark logo); long and odd unicode in campaign names,
prompts and tags; header injection through file names; formula injection in the CSVs the
project writes (reports, posting schedules).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generation.models import Campaign, Item
from review.models import ReferenceImage
from tests.conftest import PRODUCT_TEMPLATE, textured_png
from tests.generation.test_pages import form_data

HEADER = "sku,product_type,name,color,material\n"


def _rows(count: int) -> bytes:
    return (HEADER + "".join(f"B-{n},boot,Boot {n},red,leather\n" for n in range(count))).encode()


def _written() -> tuple[int, int]:
    return Campaign.objects.count(), Item.objects.count()


def _create(client, template_version, recipe, csv: bytes, **overrides):
    return client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, csv, **overrides),
    )


def _form_refused(response, field: str) -> str:
    """The New campaign page shows its form again with the field's error, as a 400."""
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    return " ".join(errors[field])


# --- CSV limits ------------------------------------------------------------------------------


def test_a_csv_over_the_row_limit_is_refused_on_the_page_and_nothing_is_written(
    settings, creative_client, template_version, recipe
):
    settings.STUDIO_MAX_CSV_ROWS = 3
    before = _written()

    response = _create(creative_client, template_version, recipe, _rows(4))

    assert "STUDIO_MAX_CSV_ROWS" in _form_refused(response, "csv_file")
    assert _written() == before


def test_a_csv_over_the_size_limit_is_refused_and_nothing_is_written(
    settings, creative_client, template_version, recipe
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    data = _rows(100)
    assert len(data) > 2048
    before = _written()

    response = _create(creative_client, template_version, recipe, data)

    assert "limit is 2,048 bytes" in _form_refused(response, "csv_file")
    assert _written() == before


def test_the_api_refuses_rows_over_the_limit_naming_the_field(
    settings, client, creative, template_version, recipe, handoffs
):
    from tests.api.conftest import api_for

    settings.STUDIO_MAX_CSV_ROWS = 3
    api = api_for(client, creative)
    rows = [{"sku": f"B-{n}", "name": f"Boot {n}", "color": "red"} for n in range(4)]
    before = _written()

    response = api.post(
        "/campaigns",
        {"name": "Big", "template": template_version.pk, "recipe": recipe.pk} | {"rows": rows},
    )

    assert 400 <= response.status_code < 500
    assert "rows" in response.content.decode()
    assert _written() == before


def test_a_binary_file_posing_as_a_csv_is_refused(creative_client, template_version, recipe):
    before = _written()

    response = _create(creative_client, template_version, recipe, textured_png())

    assert _form_refused(response, "csv_file")
    assert _written() == before


# --- Images ----------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb() -> bytes:
    # 10,000 × 10,000 one-bit pixels: 100 million (over Pillow's 89 million), a few kB.
    return _png(Image.new("1", (10_000, 10_000)))


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="GIF")
    return buffer.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<script>alert(1)</script><rect width="64" height="64" fill="red"/></svg>'
)
BAD_IMAGES = {
    "a decompression bomb": ("bomb.png", _bomb, "too large"),
    "a truncated PNG": ("cut.png", lambda: textured_png()[:200], "unreadable"),
    "a GIF behind .png": ("red.png", _gif, "not a PNG, JPEG or WEBP"),
    "HTML behind .jpg": ("page.jpg", lambda: b"<html><script>x</script></html>", "not a PNG"),
    "an SVG": ("logo.svg", lambda: SVG, "not a PNG, JPEG or WEBP"),
}


def _reference_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "references"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("case", list(BAD_IMAGES), ids=list(BAD_IMAGES))
def test_a_bad_style_reference_is_refused_and_nothing_is_stored(
    settings, manager_client, campaign, case
):
    filename, make, message = BAD_IMAGES[case]

    response = manager_client.post(
        reverse("review:references", args=[campaign.pk]),
        {"image": SimpleUploadedFile(filename, make(), content_type="image/png")},
    )

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["image"])
    assert ReferenceImage.objects.count() == 0
    assert _reference_files(settings) == []


def test_a_good_style_reference_is_stored_re_encoded(settings, manager_client, campaign):
    response = manager_client.post(
        reverse("review:references", args=[campaign.pk]),
        {"image": SimpleUploadedFile("look.png", textured_png(), content_type="image/png")},
    )

    assert response.status_code == 302
    assert ReferenceImage.objects.count() == 1
    assert len(_reference_files(settings)) == 1


# --- Unicode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 201, "at most 200 characters"),
        ("\u200b\u200c\u2060", "visible character"),
        ("Spring \u202egnirps", "right-to-left"),
        ("Spring\u0007sale", "control characters"),
    ],
    ids=["too long", "only zero-width", "bidi override", "control character"],
)
def test_a_campaign_name_that_cannot_be_shown_is_refused(
    creative_client, template_version, recipe, name, message
):
    before = _written()

    response = _create(creative_client, template_version, recipe, _rows(1), name=name)

    assert message in _form_refused(response, "name")
    assert _written() == before


def test_the_api_refuses_an_invisible_campaign_name_naming_the_field(
    client, creative, template_version, recipe, handoffs
):
    from tests.api.conftest import api_for

    before = _written()
    response = api_for(client, creative).post(
        "/campaigns",
        {"name": "\u200b", "template": template_version.pk, "recipe": recipe.pk}
        | {"rows": [{"sku": "B-1", "name": "Boot", "color": "red"}]},
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == "name"
    assert _written() == before


def test_right_to_left_text_emoji_and_joiners_are_kept_exactly(
    creative_client, template_version, recipe, handoffs
):
    name = "حملة الربيع 🚀 👩\u200d👩\u200d👧"
    product = "حذاء\u200c جلد 👟"
    data = (HEADER + f"B-1,boot,{product},red,leather\n").encode()

    response = _create(creative_client, template_version, recipe, data, name=name, variations=1)

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.name == name
    (item,) = campaign.items.all()
    assert product in item.prompt
    assert item.prompt == PRODUCT_TEMPLATE.format(
        color="red", material="leather", product_type="boot", name=product
    )


@pytest.fixture
def catalogue_item(campaign):
    from tests.conftest import route_items

    (item,) = route_items(campaign, to="approved", count=1)
    from catalogue.services import entries_sync

    entries_sync(item_ids=[item.pk])
    return item


@pytest.mark.parametrize(
    ("tags", "message"),
    [("\u200b", "visible character"), ("t" * 101, "at most 100 characters")],
    ids=["zero-width", "too long"],
)
def test_a_tag_that_cannot_be_shown_is_refused_and_no_tag_is_written(
    creative_client, catalogue_item, tags, message
):
    from catalogue.models import Entry

    before = list(Entry.objects.get(pk=catalogue_item.pk).tag_names)
    response = creative_client.post(
        reverse("catalogue:selection_tags"), {"selected": catalogue_item.pk, "add": tags}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(Entry.objects.get(pk=catalogue_item.pk).tag_names) == before


def test_an_emoji_tag_is_accepted(creative_client, catalogue_item):
    from catalogue.models import Entry

    response = creative_client.post(
        reverse("catalogue:selection_tags"), {"selected": catalogue_item.pk, "add": "🔥 Summer"}
    )

    assert response.status_code == 302
    assert "🔥 summer" in Entry.objects.get(pk=catalogue_item.pk).tag_names


# --- Header injection ------------------------------------------------------------------------


def test_a_download_name_built_from_csv_fields_cannot_inject_headers(
    creative, creative_client, template_version, recipe
):
    from catalogue.services import asset_publish
    from studio.launch import campaign_launch
    from tests.conftest import route_items

    evil = 'Boot"; filename="evil.exe\r\nSet-Cookie: session=stolen'
    out = io.StringIO()
    csv.writer(out).writerows(
        [["sku", "product_type", "name", "color", "material"], ["B-1", "boot", evil, "red", "x"]]
    )
    campaign = campaign_launch(
        name="Evil names",
        template_version=template_version,
        recipe=recipe,
        csv_bytes=out.getvalue().encode(),
        user=creative,
        base_seed=1,
    )
    (item,) = route_items(campaign, to="approved", count=1)
    asset = asset_publish(item_id=item.pk)

    response = creative_client.get(reverse("catalogue:asset_download", args=[asset.pk]))

    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in response.headers
    assert disposition.startswith("attachment;")
    assert disposition.count('"') == 2  # one quoted name, nothing after it
    assert "evil.exe" not in disposition.split('"')[1].rsplit("-", 1)[-1]


# --- Formula injection -----------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x.invalid","click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]


def test_the_campaign_report_csv_defuses_formulas_in_campaign_names(
    manager_client, template_version, recipe, creative, handoffs
):
    from catalogue.services import entries_sync
    from studio.launch import campaign_launch

    for formula in FORMULAS:
        launched = campaign_launch(
            name=f"{formula}x" if formula.startswith("\t") else formula,
            template_version=template_version,
            recipe=recipe,
            csv_bytes=_rows(1),
            user=creative,
            base_seed=1,
        )
        entries_sync(item_ids=list(launched.items.values_list("pk", flat=True)))

    response = manager_client.get(reverse("reports:campaigns"), {"csv": "campaigns"})

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    names = [row[0] for row in rows[1:]]
    assert len(names) >= len(FORMULAS)
    assert all(not name.startswith(("=", "+", "-", "@", "\t")) for name in names), names
    assert "'" + FORMULAS[0] in names


def test_the_schedule_csv_defuses_formulas():
    from catalogue.text import csv_cell

    assert [csv_cell(value) for value in FORMULAS] == ["'" + value for value in FORMULAS]
    assert csv_cell("Spring -10%") == "Spring -10%"


@pytest.mark.parametrize("case", list(BAD_IMAGES), ids=list(BAD_IMAGES))
def test_a_bad_watermark_logo_is_refused_naming_the_field(case):
    from catalogue.delivery.watermark import watermark_logo_check
    from studio.errors import InputError

    filename, make, _ = BAD_IMAGES[case]

    with pytest.raises(InputError) as error:
        watermark_logo_check(SimpleUploadedFile(filename, make(), content_type="image/png"))

    assert error.value.fields == {"watermark_logo"}
