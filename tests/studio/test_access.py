"""Every page × every persona: 200 for its roles, 403 for the others, login for anonymous."""

from __future__ import annotations

import pytest
from django.urls import reverse

ALL_ROLES = {"creative", "reviewer", "manager", "admin_user"}
PERSONAS = ["creative", "reviewer", "manager", "admin_user", "outsider", None]

# (url name, what the url needs, personas that get the page)
PAGES = [
    ("generation:dashboard", None, ALL_ROLES),
    ("generation:campaign_create", None, {"creative", "admin_user"}),
    ("generation:sample_csv", "sample", {"creative", "admin_user"}),
    ("generation:campaign", "campaign", ALL_ROLES),
    ("review:queue", None, {"reviewer", "admin_user"}),
    ("catalogue:search", None, ALL_ROLES),
    ("catalogue:asset", "asset", ALL_ROLES),
    ("catalogue:media", "media", ALL_ROLES),
]


def _url(request, name: str, needs: str | None) -> str:
    if needs is None:
        return reverse(name)
    if needs == "sample":
        return reverse(name, args=["products.csv"])
    if needs == "campaign":
        return reverse(name, args=[request.getfixturevalue("campaign").pk])
    asset = request.getfixturevalue("asset")
    if needs == "asset":
        return reverse(name, args=[asset.pk])
    return reverse(name, args=[asset.image.name])


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("name", "needs", "allowed"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_answers_each_persona_by_role(request, client, name, needs, allowed, persona):
    url = _url(request, name, needs)
    if persona is not None:
        client.force_login(request.getfixturevalue(persona))

    response = client.get(url)

    if persona is None:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")
    elif persona in allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


def test_a_user_without_a_role_is_told_to_ask_for_one(client, outsider):
    client.force_login(outsider)

    response = client.get(reverse("generation:dashboard"))

    assert response.status_code == 403
    assert b"no Studio role" in response.content


def test_a_role_that_does_not_include_a_page_gets_the_403_page(client, manager):
    client.force_login(manager)

    response = client.get(reverse("review:queue"))

    assert response.status_code == 403
    assert b"does not include it" in response.content


def test_the_navigation_shows_links_by_role(client, creative, reviewer, admin_user):
    client.force_login(creative)
    page = client.get(reverse("generation:dashboard")).content.decode()
    assert reverse("generation:campaign_create") in page
    assert reverse("review:queue") not in page
    assert reverse("admin:index") not in page

    client.force_login(reviewer)
    page = client.get(reverse("generation:dashboard")).content.decode()
    assert reverse("generation:campaign_create") not in page
    assert reverse("review:queue") in page

    client.force_login(admin_user)
    page = client.get(reverse("generation:dashboard")).content.decode()
    for url in (
        reverse("generation:campaign_create"),
        reverse("review:queue"),
        reverse("admin:index"),
        reverse("django_rq:home"),
    ):
        assert url in page


def test_the_header_logs_out_with_a_post_form(client, creative):
    client.force_login(creative)

    page = client.get(reverse("generation:dashboard")).content.decode()
    response = client.post(reverse("logout"))

    assert f'method="post" action="{reverse("logout")}"' in page
    assert response.status_code == 302
    assert client.get(reverse("generation:dashboard")).status_code == 302


def test_the_login_page_logs_a_user_in(client, creative):
    page = client.get(reverse("login"))

    response = client.post(reverse("login"), {"username": "cara", "password": "pw-for-tests-1"})

    assert page.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == reverse("generation:dashboard")


def test_a_wrong_password_shows_an_error_on_the_login_page(client, creative):
    response = client.post(reverse("login"), {"username": "cara", "password": "nope"})

    assert response.status_code == 200
    assert b"errorlist" in response.content


def test_an_unknown_campaign_is_a_404_page(client, creative):
    client.force_login(creative)

    response = client.get(
        reverse("generation:campaign", args=["7d0c2a4e-0000-4000-8000-000000000000"])
    )

    assert response.status_code == 404
    assert b"Not found" in response.content


def test_the_django_admin_opens_for_a_superuser(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(admin)

    pages = [
        reverse("admin:index"),
        reverse("admin:generation_basemodelversion_add"),
        reverse("admin:generation_prompttemplate_add"),
        reverse("admin:generation_recipe_add"),
        reverse("admin:generation_campaign_changelist"),
        reverse("admin:generation_item_changelist"),
        reverse("admin:review_reviewtask_changelist"),
        reverse("admin:review_reviewdecision_changelist"),
        reverse("admin:review_qualitypolicy_changelist"),
        reverse("admin:catalogue_asset_changelist"),
    ]

    for url in pages:
        assert client.get(url).status_code == 200, url
