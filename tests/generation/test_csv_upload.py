"""A CSV as people save it: legacy encodings, semicolons, a file kept between posts."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation import forms as generation_forms
from generation.models import Campaign
from generation.prompts import check_rows_fit_template, parse_csv
from studio import roles
from studio.errors import InputError
from tests.conftest import make_user
from tests.generation.test_pages import HTMX, form_data

HEADER = "sku,product_type,name,color,material\n"


def pending_files() -> list[str]:
    try:
        return default_storage.listdir(generation_forms.PENDING_DIR)[1]
    except FileNotFoundError:
        return []


# --- Encodings ----------------------------------------------------------------------------


def test_a_windows_1252_file_is_read_as_windows_1252_and_says_where_it_is_not_utf8():
    data = (HEADER + "X-1,mug,Café Crème,red,clay\n").encode("cp1252")

    parsed = parse_csv(data, max_rows=10)

    assert parsed.rows[0]["name"] == "Café Crème"
    assert parsed.encoding == "windows-1252"
    assert parsed.reading == (
        "Read as Windows-1252 (the file is not UTF-8: line 2, byte 48 is 'é'), comma-separated."
    )


def test_utf8_wins_whenever_the_file_is_valid_utf8(products_csv):
    parsed = parse_csv(products_csv, max_rows=100)

    assert parsed.encoding == "utf-8"
    assert parsed.reading == "Read as UTF-8, comma-separated."
    assert "Dép Sài Gòn" in {row["name"] for row in parsed.rows}


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column():
    parsed = parse_csv("\ufeffsku,name\nA-1,Tas Batik\n".encode(), max_rows=10)

    assert (parsed.columns, parsed.encoding) == (["sku", "name"], "utf-8")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_utf16_file_with_a_byte_order_mark_is_read_as_utf16(codec):
    # Excel's "Unicode text": UTF-16 with a byte-order mark, separated by tabs.
    data = "\ufeffsku\tname\nA-1\tDép Sài Gòn\n".encode(codec)

    parsed = parse_csv(data, max_rows=10)

    assert parsed.rows == [{"sku": "A-1", "name": "Dép Sài Gòn"}]
    assert (parsed.encoding, parsed.delimiter) == ("utf-16", "\t")


def test_a_chosen_encoding_is_used_even_where_detection_would_say_windows_1252():
    data = (HEADER + "X-1,mug,Café,red,clay\n").encode("mac-roman")

    assert parse_csv(data, max_rows=10).rows[0]["name"] == "CafŽ"
    parsed = parse_csv(data, max_rows=10, encoding="mac-roman")
    assert parsed.rows[0]["name"] == "Café"
    assert parsed.encoding == "mac-roman"


def test_a_file_that_is_not_valid_in_the_chosen_encoding_names_line_and_byte():
    data = (HEADER + "X-1,mug,Café,red,clay\n").encode("cp1252")

    with pytest.raises(InputError, match=r"csv: line 2 is not valid UTF-8 \(byte 48\)"):
        parse_csv(data, max_rows=10, encoding="utf-8")


def test_an_excel_workbook_is_told_apart_from_a_csv():
    with pytest.raises(InputError, match=r"an Excel workbook \(.xlsx\), not a CSV"):
        parse_csv(b"PK\x03\x04\x14\x00\x06\x00", max_rows=10)


# --- Delimiters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "words"), [(";", "semicolon"), ("\t", "tab"), ("|", "|"), (",", "comma")]
)
def test_the_delimiter_is_detected_and_named(delimiter, words):
    data = f"sku{delimiter}name{delimiter}price\nA-1{delimiter}Boot{delimiter}12.50\n".encode()

    parsed = parse_csv(data, max_rows=10)

    assert parsed.columns == ["sku", "name", "price"]
    assert parsed.rows == [{"sku": "A-1", "name": "Boot", "price": "12.50"}]
    assert parsed.reading == f"Read as UTF-8, {words}-separated."


def test_a_european_excel_file_with_decimal_commas_is_read_as_semicolon_separated():
    data = "sku;name;price\nA-1;Bottes, cuir;12,50\nA-2;Sabot;9,90\n".encode("cp1252")

    parsed = parse_csv(data, max_rows=10)

    assert parsed.delimiter == ";"
    assert parsed.rows[0] == {"sku": "A-1", "name": "Bottes, cuir", "price": "12,50"}


def test_semicolons_inside_the_values_of_a_comma_file_do_not_change_the_delimiter():
    parsed = parse_csv(b'sku,notes\nA-1,"red; soft"\nA-2,blue; hard\n', max_rows=10)

    assert parsed.delimiter == ","
    assert parsed.rows[1] == {"sku": "A-2", "notes": "blue; hard"}


def test_a_header_left_as_one_column_with_semicolons_is_one_clear_error():
    parsed = parse_csv(b'"sku;color;material"\n"X-1;red;clay"\n', max_rows=10)

    with pytest.raises(InputError) as error:
        check_rows_fit_template(parsed, ["color", "material"])
    assert error.value.messages() == [
        "csv: the header is one column, 'sku;color;material'; it looks semicolon-separated but "
        "could not be split that way (check the quotes in the first line)"
    ]


def test_a_row_of_the_wrong_width_says_how_the_file_was_split():
    with pytest.raises(InputError, match="has 3 values, the header has 2 columns, read as "):
        parse_csv(b"sku;name\nA-1;Boot;extra\n", max_rows=10)


# --- The form -----------------------------------------------------------------------------


def test_preview_of_a_windows_1252_semicolon_file_says_how_it_was_read(
    creative_client, template_version, recipe
):
    csv = "sku;product_type;name;color;material\nX-1;mug;Café Crème;red;clay\n".encode("cp1252")

    response = creative_client.post(
        reverse("generation:campaign_preview"), form_data(template_version, recipe, csv), **HTMX
    )
    fragment = response.content.decode()

    assert "2 images" in fragment
    assert "Read as Windows-1252 (the file is not UTF-8: line 2, byte 48 is" in fragment
    assert "semicolon-separated" in fragment
    assert "a red clay mug, Café Crème" in fragment


def test_preview_with_a_chosen_encoding_reads_the_file_that_way_and_says_so(
    creative_client, template_version, recipe
):
    csv = (HEADER + "X-1,mug,Café,red,clay\n").encode("mac-roman")

    response = creative_client.post(
        reverse("generation:campaign_preview"),
        form_data(template_version, recipe, csv, csv_encoding="mac-roman"),
        **HTMX,
    )
    fragment = response.content.decode()

    assert "Read as Mac Roman (as chosen), comma-separated." in fragment
    assert "a red clay mug, Café" in fragment


def test_a_file_the_chosen_encoding_cannot_read_is_an_error_on_the_file(
    creative_client, template_version, recipe
):
    csv = (HEADER + "X-1,mug,Café,red,clay\n").encode("cp1252")

    response = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, csv, csv_encoding="utf-8"),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["csv_file"] == [
        "line 2 is not valid UTF-8 (byte 48); choose its encoding under Encoding, or save the "
        "file as UTF-8"
    ]


@pytest.mark.parametrize("size", ["1200by628", "1200x", "x628", "big"])
def test_a_badly_written_custom_size_says_how_to_write_it(
    creative_client, template_version, recipe, products_csv, size
):
    response = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, custom_size=size),
    )

    assert response.context["form"].errors["custom_size"] == [
        "Write the size as WIDTHxHEIGHT, e.g. 1200x628."
    ]


@pytest.mark.parametrize("size", ["1200 x 628", "1200X628", "1200×628"])
def test_a_custom_size_may_be_written_the_ways_people_write_sizes(
    base_model, template_version, size
):
    from generation.services import recipe_create

    recipe = recipe_create(name="wide", base_model=base_model, width=512, height=512)
    form = generation_forms.CampaignForm(
        form_data(template_version, recipe, b"", custom_size=size) | {"csv_file": None},
        {"csv_file": SimpleUploadedFile("p.csv", b"color\nred\n")},
    )

    assert form.is_valid(), form.errors
    assert form.service_kwargs()["channels"] == ["1200x628"]


# --- Keeping the upload -------------------------------------------------------------------


def test_a_failed_create_keeps_the_file_so_the_next_create_needs_no_new_upload(
    creative_client, template_version, recipe, products_csv
):
    first = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, name=""),
    )
    kept = first.context["form"].kept
    page = first.content.decode()

    assert first.status_code == 400
    assert "Using <strong>products.csv</strong> (uploaded) — choose another file" in page
    assert f'name="csv_token" value="{kept.token}"' in page
    assert default_storage.open(kept.path).read() == products_csv

    data = form_data(template_version, recipe, products_csv) | {"csv_token": kept.token}
    del data["csv_file"]
    second = creative_client.post(reverse("generation:campaign_create"), data)

    campaign = Campaign.objects.get()
    assert second.status_code == 302
    assert (campaign.csv_filename, campaign.items.count()) == ("products.csv", 40)
    assert not default_storage.exists(kept.path)  # made into a campaign: no longer kept


def test_a_kept_file_is_used_by_the_preview_too(
    creative_client, template_version, recipe, products_csv
):
    first = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, name=""),
    )
    data = form_data(template_version, recipe, b"") | {
        "csv_token": first.context["form"].kept.token
    }
    del data["csv_file"]

    response = creative_client.post(reverse("generation:campaign_preview"), data, **HTMX)

    assert "40 images" in response.content.decode()


def test_a_new_file_replaces_the_kept_one(creative_client, template_version, recipe, products_csv):
    first = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv, name=""),
    )
    old = first.context["form"].kept
    other = HEADER + "X-1,mug,Cup,red,clay\n"
    data = form_data(template_version, recipe, other.encode(), name="") | {"csv_token": old.token}
    data["csv_file"].name = "mugs.csv"

    second = creative_client.post(reverse("generation:campaign_create"), data)

    new = second.context["form"].kept
    assert new.filename == "mugs.csv"
    assert "Using <strong>mugs.csv</strong>" in second.content.decode()
    assert not default_storage.exists(old.path)
    assert pending_files() == [os.path.basename(new.path)]


def test_a_file_is_not_kept_when_it_was_refused_before_reading(
    settings, creative_client, template_version, recipe, products_csv
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = creative_client.post(
        reverse("generation:campaign_create"),
        form_data(template_version, recipe, products_csv * 3),
    )

    assert response.context["form"].kept is None
    assert pending_files() == []


def post_with_token(client, template_version, recipe, token: str):
    data = form_data(template_version, recipe, b"") | {"csv_token": token}
    del data["csv_file"]
    return client.post(reverse("generation:campaign_create"), data)


@pytest.mark.parametrize(
    "token", ["forged", "eyJrZXkiOiIxMjMifQ:1uQ3bM:abcdefghijklmnopqrstuvwxyz0123456789ABCDE"]
)
def test_a_forged_token_is_a_field_error(creative_client, template_version, recipe, token):
    response = post_with_token(creative_client, template_version, recipe, token)

    assert response.status_code == 400
    assert response.context["form"].errors["csv_file"] == [
        "The kept file is not one of your uploads; attach the CSV file again."
    ]
    assert Campaign.objects.count() == 0


def test_another_users_token_is_refused(client, creative, template_version, recipe, products_csv):
    kept = generation_forms.pending_upload_keep(products_csv, filename="p.csv", user_id=creative.pk)
    client.force_login(make_user("carl", roles.CREATIVE))

    response = post_with_token(client, template_version, recipe, kept.token)

    assert response.context["form"].errors["csv_file"] == [
        "The kept file is not one of your uploads; attach the CSV file again."
    ]


def test_an_expired_token_says_so(
    monkeypatch, creative_client, creative, template_version, recipe, products_csv
):
    kept = generation_forms.pending_upload_keep(products_csv, filename="p.csv", user_id=creative.pk)
    monkeypatch.setattr(generation_forms, "PENDING_MAX_AGE", timedelta(seconds=-1))

    response = post_with_token(creative_client, template_version, recipe, kept.token)

    assert response.context["form"].errors["csv_file"] == [
        "The file kept from your last try has expired; attach the CSV file again."
    ]


def test_a_kept_file_deleted_meanwhile_is_a_field_error(
    creative_client, creative, template_version, recipe, products_csv
):
    kept = generation_forms.pending_upload_keep(products_csv, filename="p.csv", user_id=creative.pk)
    default_storage.delete(kept.path)

    response = post_with_token(creative_client, template_version, recipe, kept.token)

    assert response.status_code == 400
    assert response.context["form"].errors["csv_file"] == [
        "The file kept from your last try is gone; attach the CSV file again."
    ]


def test_no_file_and_no_token_asks_for_a_file(creative_client, template_version, recipe):
    data = form_data(template_version, recipe, b"")
    del data["csv_file"]

    response = creative_client.post(reverse("generation:campaign_create"), data)

    assert response.context["form"].errors["csv_file"] == ["Attach a CSV file."]


def test_keeping_a_file_deletes_pending_files_older_than_a_day(creative, products_csv):
    old = default_storage.save(f"{generation_forms.PENDING_DIR}/old.csv", ContentFile(b"x"))
    recent = default_storage.save(f"{generation_forms.PENDING_DIR}/recent.csv", ContentFile(b"x"))
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(default_storage.path(old), (two_days_ago, two_days_ago))

    kept = generation_forms.pending_upload_keep(products_csv, filename="p.csv", user_id=creative.pk)

    assert not default_storage.exists(old)
    assert default_storage.exists(recent)
    assert default_storage.exists(kept.path)
