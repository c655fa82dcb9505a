"""The chrome around every page: navigation per role, the 405 page, how a 403 is logged."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from studio.services import user_role_grant

# Every page behind a role decorator that opens without a URL argument: each one that answers
# a persona with 200 must be in that persona's navigation, and no other.
ROLE_PAGES = [
    "generation:dashboard",
    "generation:campaign_create",
    "review:queue",
    "review:grid",
    "review:stats",
    "catalogue:search",
    "api_access",
    "generation:budgets",
    "reports:overview",
    "catalogue:exports",
]
# The Django admin and the queue dashboard check is_staff, which the admin role grants.
STAFF_PAGES = ["admin:index", "django_rq:home"]
NAV_PAGES = ROLE_PAGES + STAFF_PAGES


@pytest.fixture
def staff_admin(db) -> User:
    user = User.objects.create_user(username="sam", password="pw-for-tests-1")
    user_role_grant(user=user, role="admin")
    return user


def _nav_hrefs(html: str) -> set[str]:
    nav = re.search(r'<header class="site-header">(.*?)</header>', html, re.S)
    assert nav, "no site header"
    # The page links, not the brand (which always leads to the dashboard).
    return set(re.findall(r'<a href="([^"]+)"(?! class="brand")', nav.group(1)))


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("creative", {"generation:campaign_create", "catalogue:exports"}),
        ("reviewer", {"review:queue", "review:grid", "review:stats"}),
        (
            "manager",
            {"review:stats", "generation:budgets", "reports:overview", "catalogue:exports"},
        ),
        (
            "admin_user",
            {
                "generation:campaign_create",
                "review:queue",
                "review:grid",
                "review:stats",
                "generation:budgets",
                "reports:overview",
                "catalogue:exports",
                "admin:index",
                "django_rq:home",
            },
        ),
        (
            "staff_admin",
            {
                "generation:campaign_create",
                "review:queue",
                "review:grid",
                "review:stats",
                "generation:budgets",
                "reports:overview",
                "catalogue:exports",
                "admin:index",
                "django_rq:home",
            },
        ),
    ],
)
def test_the_navigation_shows_each_role_the_pages_it_may_open(request, client, persona, expected):
    client.force_login(request.getfixturevalue(persona))

    hrefs = _nav_hrefs(client.get(reverse("generation:dashboard")).content.decode())

    everyone = {"generation:dashboard", "catalogue:search", "api_access"}
    assert {name for name in NAV_PAGES if reverse(name) in hrefs} == everyone | expected


@pytest.mark.parametrize(
    "persona", ["creative", "reviewer", "manager", "admin_user", "staff_admin", "outsider"]
)
def test_the_navigation_links_exactly_the_pages_that_open_for_the_persona(request, client, persona):
    # Follows the views' role decorators: a page added to a role must get a nav link.
    client.force_login(request.getfixturevalue(persona))
    hrefs = _nav_hrefs(client.get(reverse("generation:dashboard")).content.decode())

    opens = {name for name in ROLE_PAGES if client.get(reverse(name)).status_code == 200}

    assert {name for name in ROLE_PAGES if reverse(name) in hrefs} == opens


def test_the_admin_links_open_for_an_admin_made_by_the_role_service(client, staff_admin):
    client.force_login(staff_admin)
    hrefs = _nav_hrefs(client.get(reverse("generation:dashboard")).content.decode())

    for name in STAFF_PAGES:
        assert reverse(name) in hrefs
        assert client.get(reverse(name)).status_code == 200


def test_a_manager_reaches_reviewer_statistics_from_the_navigation(client, manager):
    client.force_login(manager)

    page = client.get(reverse("catalogue:search")).content.decode()

    assert f'<a href="{reverse("review:stats")}">Reviewer stats</a>' in page
    assert client.get(reverse("review:stats")).status_code == 200


def test_a_user_without_a_role_sees_no_page_links(client, outsider):
    client.force_login(outsider)

    hrefs = _nav_hrefs(client.get(reverse("generation:dashboard")).content.decode())

    assert hrefs == set()


def test_a_get_on_a_post_only_address_shows_a_page_that_links_back(client, reviewer):
    client.force_login(reviewer)
    queue = "http://testserver" + reverse("review:queue")

    response = client.get(reverse("review:undo"), HTTP_REFERER=queue)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert [t.name for t in response.templates][0] == "405.html"
    page = response.content.decode()
    assert "only accepts form submissions" in page
    assert f'href="{queue}" id="back-link"' in page
    assert reverse("review:stats") in page  # drawn inside base.html, with the nav


def test_the_405_page_links_to_the_dashboard_rather_than_to_another_site(client, reviewer):
    client.force_login(reviewer)

    response = client.get(reverse("review:undo"), HTTP_REFERER="https://evil.example/")

    assert response.status_code == 405
    page = response.content.decode()
    assert "evil.example" not in page
    assert f'href="{reverse("generation:dashboard")}" id="back-link"' in page


def test_a_get_on_a_post_only_address_is_logged_once(client, reviewer, caplog):
    client.force_login(reviewer)

    with caplog.at_level(logging.INFO, logger="django.request"):
        client.get(reverse("review:undo"))

    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [
        "Method Not Allowed (GET): /review/undo/"
    ]


def _configured_handlers(logger_name: str) -> list[logging.Handler]:
    """The handlers LOGGING configured on the way from `logger_name` to the root (pytest's
    own capture handlers have no name)."""
    handlers, logger = [], logging.getLogger(logger_name)
    while logger:
        handlers += [h for h in logger.handlers if h.name]
        logger = logger.parent if logger.propagate else None
    return handlers


def test_a_403_is_written_once_as_a_warning_without_a_traceback(
    client, creative, caplog, settings, monkeypatch
):
    # DEBUG on: Django's own console handler used to write django.* lines a second time.
    settings.DEBUG = True
    written: list[str] = []
    for handler in _configured_handlers("django.request"):
        monkeypatch.setattr(
            handler, "emit", lambda record, h=handler: written.append(h.format(record))
        )
    client.force_login(creative)

    with caplog.at_level(logging.INFO):
        response = client.get(reverse("review:queue"))

    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name.startswith("django")]
    assert record.name == "django.request"
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage() == (
        "Forbidden (Permission denied): /review/ (Your role does not allow this page.)"
    )
    assert len(written) == 1
    assert "Traceback" not in written[0]
    assert "WARNING django.request: Forbidden (Permission denied): /review/" in written[0]


def test_no_template_uses_an_emoji_as_an_icon():
    # Debian's Chromium has no emoji font: they render as empty boxes. Icons are inline SVG.
    import re
    from pathlib import Path

    emoji = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55]")
    templates = Path(__file__).resolve().parents[2] / "templates"
    found = [
        f"{path.relative_to(templates)}: {match.group()}"
        for path in sorted(templates.rglob("*.html"))
        for match in emoji.finditer(path.read_text())
    ]
    assert found == []
