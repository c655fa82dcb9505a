"""The posting schedule of a social campaign: the page, its form, and the CSV and iCalendar
exports (the .ics is parsed back here with a small unfolding parser)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from catalogue.delivery.schedule import (
    ics_fold,
    ics_text,
    posting_slot_create,
    row_caption,
    schedule_ics,
)
from catalogue.models import PostingSlot, Rendition
from studio.errors import InputError
from tests.conftest import logged_in, make_user, route_items

SOCIAL_CSV = (
    b"post_id,platform,theme,product,tone,caption\n"
    b'S-01,instagram,summer sale,Aero Runner,playful,"Run; fast, far \\ free"\n'
    b"S-02,instagram,unboxing,Pulse Buds,energetic,Hear it all\n"
)


@pytest.fixture
def social(creative, base_model):
    """A social campaign of two rows × two variations; three images published: row 1's A and
    B, row 2's A."""
    from catalogue.services import asset_publish
    from generation.services import prompt_template_version_create, recipe_create
    from studio.launch import campaign_launch

    template = prompt_template_version_create(
        name="social-post", body="a {tone} social post about {theme} featuring {product}"
    )
    recipe = recipe_create(name="social", base_model=base_model, steps=2, width=64, height=64)
    campaign = campaign_launch(
        name="Summer social",
        template_version=template,
        recipe=recipe,
        csv_bytes=SOCIAL_CSV,
        csv_filename="social.csv",
        variations=2,
        user=creative,
        base_seed=7,
    )
    items = route_items(campaign, to="approved", count=3)
    assets = [asset_publish(item_id=item.pk) for item in items]
    return campaign, assets


def _url(name: str, campaign, *args) -> str:
    return reverse(f"catalogue:{name}", args=[campaign.pk, *args])


def _add(client, campaign, asset, **values):
    data = {
        "asset": str(asset.pk),
        "platform": "instagram",
        "date": "2026-07-01",
        "time": "09:30",
        "time_zone": "Europe/Paris",
        "caption": "",
        **values,
    }
    return client.post(_url("schedule_add", campaign), data)


def _slot(campaign, asset, *, day="2026-07-01", at="09:30", zone="Europe/Paris", **kwargs):
    return posting_slot_create(
        campaign=campaign,
        asset_id=asset.pk,
        platform=kwargs.pop("platform", "instagram"),
        day=day,
        at=at,
        time_zone=zone,
        **kwargs,
    )


# --- The page --------------------------------------------------------------------------------


def test_the_page_shows_each_rows_variations_with_their_labels_and_captions(
    social, creative_client
):
    campaign, (a1, b1, a2) = social

    response = creative_client.get(_url("schedule", campaign))

    assert response.status_code == 200
    rows = response.context["rows"]
    assert [[asset.ab_label for asset in row.assets] for row in rows] == [["A", "B"], ["A"]]
    assert [row.caption for row in rows] == ["Run; fast, far \\ free", "Hear it all"]
    page = response.content.decode()
    assert reverse("catalogue:media", args=[b1.thumbnail.name]) in page
    assert "Add slot" in page
    assert "instagram" in response.context["platforms"]


def test_the_campaign_page_links_to_its_schedule(social, creative_client):
    campaign, _ = social

    response = creative_client.get(reverse("generation:campaign", args=[campaign.pk]))

    assert _url("schedule", campaign) in response.content.decode()


def test_a_reviewer_reads_the_schedule_but_may_not_change_it(social, reviewer_client):
    campaign, (a1, _, _) = social
    slot = _slot(campaign, a1)

    page = reviewer_client.get(_url("schedule", campaign))
    assert page.status_code == 200
    assert "Add slot" not in page.content.decode()
    assert reviewer_client.get(_url("schedule_ics", campaign)).status_code == 200

    assert _add(reviewer_client, campaign, a1, time="10:00").status_code == 403
    assert reviewer_client.post(_url("schedule_delete", campaign, slot.pk)).status_code == 403
    assert PostingSlot.objects.count() == 1


def test_a_user_without_a_role_is_refused_and_a_visitor_sent_to_log_in(social, client):
    campaign, _ = social

    assert client.get(_url("schedule", campaign)).status_code == 302
    logged_in(client, make_user("nobody"))
    assert client.get(_url("schedule", campaign)).status_code == 403
    assert client.get(_url("schedule_csv", campaign)).status_code == 403


def test_slots_are_listed_by_week_in_their_own_time_zone(social, manager_client):
    campaign, (a1, b1, _) = social
    _slot(campaign, b1, day="2026-07-08", at="18:00", zone="America/New_York")
    _slot(campaign, a1, day="2026-07-01", at="09:30", zone="Asia/Tokyo")

    response = manager_client.get(_url("schedule", campaign))

    weeks = response.context["weeks"]
    assert [week for week, _ in weeks] == ["2026-W27", "2026-W28"]
    first, second = weeks[0][1][0], weeks[1][1][0]
    assert (f"{first.local:%H:%M}", first.time_zone) == ("09:30", "Asia/Tokyo")
    assert f"{second.local:%Y-%m-%d %H:%M}" == "2026-07-08 18:00"
    page = response.content.decode()
    assert "Week 2026-W28" in page
    # Shown in the zone each slot was given in, with UTC beside it.
    assert '<td class="nowrap">09:30</td>' in page
    assert "2026-07-01 00:30 UTC" in page
    assert '<td class="nowrap">18:00</td>' in page


# --- Adding and removing slots ---------------------------------------------------------------


def test_a_slot_is_stored_in_utc_with_the_rows_caption_by_default(social, creative, client):
    campaign, (a1, _, _) = social

    response = _add(logged_in(client, creative), campaign, a1)

    assert response.status_code == 302
    slot = PostingSlot.objects.get()
    assert slot.starts_at == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)  # CEST is UTC+2
    assert (slot.time_zone, slot.platform) == ("Europe/Paris", "instagram")
    assert slot.caption == "Run; fast, far \\ free"
    assert slot.created_by == creative


def test_a_caption_given_replaces_the_rows(social, creative_client):
    campaign, (_, b1, _) = social

    _add(creative_client, campaign, b1, caption="  Variant B copy  ", platform="IG")

    slot = PostingSlot.objects.get()
    assert (slot.caption, slot.platform, slot.asset_id) == ("Variant B copy", "instagram", b1.pk)


def test_bad_input_is_a_400_naming_each_field_and_nothing_is_written(social, creative_client):
    campaign, _ = social

    response = creative_client.post(
        _url("schedule_add", campaign),
        {
            "asset": str(uuid.uuid4()),
            "platform": "myspace",
            "date": "2026-13-01",
            "time": "25:00",
            "time_zone": "Mars/Olympus_Mons",
            "caption": "x" * 5001,
        },
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"asset", "platform", "date", "time", "time_zone", "caption"}
    assert "'myspace' is not a platform of this campaign (known: instagram" in errors["platform"][0]
    assert "not an IANA time zone" in errors["time_zone"][0]
    assert "Mars/Olympus_Mons" in response.content.decode()
    assert not PostingSlot.objects.exists()


def test_an_empty_form_names_every_missing_field(social, creative_client):
    campaign, _ = social

    response = creative_client.post(_url("schedule_add", campaign), {})

    assert response.status_code == 400
    assert set(response.context["form"].errors) == {
        "asset",
        "platform",
        "date",
        "time",
        "time_zone",
    }


def test_only_published_images_of_the_campaign_get_a_slot(social, creative_client, admin_user):
    from catalogue.services import asset_withdraw

    campaign, (a1, _, _) = social
    asset_withdraw(asset=a1, user=admin_user)

    response = _add(creative_client, campaign, a1)

    assert response.status_code == 400
    assert response.context["form"].errors["asset"] == ["choose a published image of this campaign"]
    assert not PostingSlot.objects.exists()


def test_an_image_of_another_campaign_is_refused(social, asset, creative_client):
    campaign, _ = social

    response = _add(creative_client, campaign, asset)

    assert response.status_code == 400
    assert "asset" in response.context["form"].errors


def test_the_same_slot_twice_is_refused_with_a_clear_message(social, creative_client):
    campaign, (a1, _, _) = social
    assert _add(creative_client, campaign, a1).status_code == 302

    response = _add(creative_client, campaign, a1)

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        f"A ({a1.title}) is already scheduled on instagram at 2026-07-01 09:30 Europe/Paris"
    ]
    assert PostingSlot.objects.count() == 1


def test_the_same_instant_written_in_another_zone_is_the_same_slot(social):
    campaign, (a1, _, _) = social
    _slot(campaign, a1, at="09:30", zone="Europe/Paris")

    with pytest.raises(InputError, match="already scheduled"):
        _slot(campaign, a1, at="07:30", zone="UTC")


def test_a_time_the_clocks_skip_is_refused_and_one_they_repeat_is_the_first(social):
    campaign, (a1, _, _) = social

    with pytest.raises(InputError) as skipped:
        _slot(campaign, a1, day="2026-03-29", at="02:30", zone="Europe/Paris")
    assert skipped.value.fields == {"time"}
    assert "does not exist in Europe/Paris on 2026-03-29" in str(skipped.value)

    slot = _slot(campaign, a1, day="2026-10-25", at="02:30", zone="Europe/Paris")
    assert slot.starts_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # still CEST


def test_removing_a_slot_deletes_it_once(social, creative_client):
    campaign, (a1, _, _) = social
    slot = _slot(campaign, a1)
    url = _url("schedule_delete", campaign, slot.pk)

    assert creative_client.post(url).status_code == 302
    assert not PostingSlot.objects.exists()
    again = creative_client.post(url, follow=True)
    assert "already removed" in again.content.decode()
    assert creative_client.get(url).status_code == 405


def test_a_slot_of_another_campaign_is_not_removed_through_this_one(social, asset, creative_client):
    campaign, _ = social
    other = _slot(asset.campaign, asset)

    creative_client.post(_url("schedule_delete", campaign, other.pk))

    assert PostingSlot.objects.filter(pk=other.pk).exists()


# --- CSV -------------------------------------------------------------------------------------


def test_the_csv_lists_slots_in_time_order_with_renditions_and_neutralised_cells(
    social, creative_client, admin_user
):
    from catalogue.services import asset_withdraw

    campaign, (a1, b1, a2) = social
    Rendition.objects.create(
        asset=b1,
        channel="instagram",
        width=1080,
        height=1080,
        format="jpeg",
        file=f"renditions/{b1.pk}/S-01-summer-sale-instagram.jpg",
        sha256="0" * 64,
        fingerprint="v1",
    )
    _slot(campaign, b1, day="2026-07-02", at="12:00", zone="UTC", caption="=HYPERLINK(1)")
    _slot(campaign, a1, day="2026-07-01", at="08:00", zone="Asia/Kolkata")
    withdrawn = _slot(campaign, a2, day="2026-07-03", at="08:00", zone="UTC")
    asset_withdraw(asset=a2, user=admin_user)

    response = creative_client.get(_url("schedule_csv", campaign))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="summer-social-schedule.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "date",
        "time",
        "time_zone",
        "utc_time",
        "platform",
        "asset_id",
        "label",
        "title",
        "caption",
        "file",
    ]
    assert rows[1] == [
        "2026-07-01",
        "08:00",
        "Asia/Kolkata",
        "2026-07-01T02:30:00Z",
        "instagram",
        str(a1.pk),
        "A",
        a1.title,
        "Run; fast, far \\ free",
        "",
    ]
    assert rows[2][6:] == ["B", b1.title, "'=HYPERLINK(1)", "S-01-summer-sale-instagram.jpg"]
    assert len(rows) == 3  # the withdrawn image's slot is left out
    assert str(withdrawn.asset_id) not in response.content.decode()


# --- iCalendar -------------------------------------------------------------------------------


def _unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars)
            out.append("\n" if following in "nN" else following)
        else:
            out.append(char)
    return "".join(out)


def parse_ics(text: str) -> list[dict]:
    """The components of an iCalendar text as [{"component", "properties": {name: value}}],
    checking on the way the lines RFC 5545 asks for: CRLF, at most 75 octets, folds that
    start with a space."""
    assert text.endswith("\r\n")
    physical = text[:-2].split("\r\n")
    for line in physical:
        assert "\n" not in line and "\r" not in line
        assert len(line.encode("utf-8")) <= 75, line
    logical: list[str] = []
    for line in physical:
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    components, stack = [], []
    for line in logical:
        name, _, value = line.partition(":")
        if name == "BEGIN":
            stack.append({"component": value, "properties": {}})
        elif name == "END":
            component = stack.pop()
            assert component["component"] == value
            components.append(component)
        else:
            stack[-1]["properties"][name] = value
    assert not stack
    return components


def test_the_ics_has_one_event_per_slot_at_its_utc_instant(social, creative_client):
    campaign, (a1, b1, _) = social
    first = _slot(campaign, a1, day="2026-07-01", at="09:30", zone="Europe/Paris")
    second = _slot(campaign, b1, day="2026-07-01", at="09:30", zone="America/Los_Angeles")

    response = creative_client.get(_url("schedule_ics", campaign))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    components = parse_ics(response.content.decode("utf-8"))
    calendar = components[-1]
    assert calendar["component"] == "VCALENDAR"
    assert calendar["properties"]["VERSION"] == "2.0"
    assert calendar["properties"]["PRODID"] == "-//Studio//Posting schedule//EN"
    events = [c["properties"] for c in components if c["component"] == "VEVENT"]
    assert [e["UID"] for e in events] == [f"{first.pk}@testserver", f"{second.pk}@testserver"]
    assert [e["DTSTART"] for e in events] == ["20260701T073000Z", "20260701T163000Z"]
    assert all(e["DTSTAMP"].endswith("Z") and len(e["DTSTAMP"]) == 16 for e in events)
    assert _unescape(events[0]["SUMMARY"]) == f"instagram: A {a1.title}"
    assert _unescape(events[0]["DESCRIPTION"]) == "Run; fast, far \\ free"
    assert events[0]["DESCRIPTION"] == "Run\\; fast\\, far \\\\ free"
    assert events[1]["URL"] == f"http://testserver/catalogue/{b1.pk}/"


def test_a_long_unicode_caption_is_escaped_folded_and_read_back_whole(social):
    campaign, (a1, _, _) = social
    caption = (
        "Été à Sài Gòn 🌞🏃‍♀️, 夏のセール; new\\old\nsecond line\r\nthird, "
        + "ñ" * 50
        + "😀" * 40
        + " done"
    )
    slot = _slot(campaign, a1, caption=caption)

    text = schedule_ics(campaign, host="studio.example:8443")

    (event,) = [c["properties"] for c in parse_ics(text) if c["component"] == "VEVENT"]
    assert event["UID"] == f"{slot.pk}@studio.example"
    assert _unescape(event["DESCRIPTION"]) == caption.replace("\r\n", "\n")
    assert text.count("\r\n ") >= 4  # folded, several times
    assert "\n" not in text.replace("\r\n", "")


def test_folding_never_splits_a_character_and_fills_lines_to_75_octets():
    line = "DESCRIPTION:" + "é" * 100 + "😀" * 30

    folded = ics_fold(line)

    physical = folded[:-2].split("\r\n")
    assert all(len(part.encode("utf-8")) <= 75 for part in physical)
    assert len(physical[0].encode("utf-8")) >= 74
    assert "".join(p[1:] if i else p for i, p in enumerate(physical)) == line
    assert ics_fold("SHORT:x") == "SHORT:x\r\n"


def test_text_values_escape_backslash_semicolon_comma_and_newlines():
    assert ics_text("a\\b;c,d\ne\r\nf\rg") == "a\\\\b\\;c\\,d\\ne\\nf\\ng"
    assert ics_text("bell\x07tab\tkept") == "belltab\tkept"


def test_the_rows_caption_comes_from_its_caption_text_or_copy_column():
    assert row_caption({"Caption": " Hello "}) == "Hello"
    assert row_caption({"theme": "sale", "Copy": "Buy now"}) == "Buy now"
    assert row_caption({"post_id": "S-01", "theme": "summer sale"}) == ""
