"""In a real Chromium, the review page draws the content detector's box over the image on
demand, where the face is."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from review.services import item_score
from tests.conftest import item_as_generated, make_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

PASSWORD = "browser-pw-1"


def _astronaut_png() -> bytes:
    skimage = pytest.importorskip("skimage")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").save(buffer, "PNG")
    return buffer.getvalue()


def test_the_review_page_shows_the_detectors_box_over_the_face_when_asked(
    live_server, transactional_db, page, campaign
):
    make_user("kim", "reviewer", password=PASSWORD)
    item = item_as_generated(campaign.items.first(), _astronaut_png())
    result = item_score(item_id=item.pk)
    assert result.verdict == "review" and "person" in result.reason_codes
    x, y, w, h = result.detections[0]["box"]

    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.fill("input[name=username]", "kim")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector(".review[data-task]")
    page.wait_for_selector("html[data-detections=ready]", state="attached")
    page.wait_for_function("document.querySelector('.review figure img').complete")

    box = page.locator(".detection-box.flagged")
    assert not box.is_visible()  # drawn on demand only
    toggle = page.locator(".detections-toggle")
    toggle.click()

    assert box.is_visible()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert "face female 0.72 · person" in box.inner_text()
    image = page.locator(".review figure img").bounding_box()
    drawn = box.bounding_box()
    # object-fit: contain letterboxes the 512-px square picture inside the element's box.
    shown = min(image["width"], image["height"])
    left = image["x"] + (image["width"] - shown) / 2
    top = image["y"] + (image["height"] - shown) / 2
    scale = shown / 512
    assert drawn["x"] == pytest.approx(left + x * scale, abs=3)
    assert drawn["y"] == pytest.approx(top + y * scale, abs=3)
    assert drawn["width"] == pytest.approx(w * scale, abs=3)
    assert drawn["height"] == pytest.approx(h * scale, abs=3)

    toggle.click()
    assert not box.is_visible()
