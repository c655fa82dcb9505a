from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from studio.errors import InputError
from studio.models import ApiToken
from studio.tokens import token_authenticate, token_create, token_revoke
from tests.api.conftest import Api, assert_problem


def test_a_token_is_stored_only_as_its_sha256(creative):
    token, secret = token_create(user=creative, name="PIM", scopes=["campaigns:read"])

    assert secret.startswith("studio_") and len(secret) > 40
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert token_authenticate(secret) == token


def test_a_token_gets_only_scopes_the_users_role_allows(creative):
    with pytest.raises(InputError) as caught:
        token_create(user=creative, name="x", scopes=["campaigns:read", "review:write"])

    assert caught.value.fields == {"scopes"}
    assert "review:write: not allowed by your role" in str(caught.value)


def test_it_refuses_an_unknown_scope_an_empty_name_and_a_bad_expiry_at_once(creative):
    with pytest.raises(InputError) as caught:
        token_create(user=creative, name=" ", scopes=["campaigns:rread"], expires_days=0)

    assert caught.value.fields == {"name", "scopes", "expires_days"}


def test_an_expired_or_revoked_token_no_longer_authenticates(creative):
    expired, expired_secret = token_create(user=creative, name="a", scopes=["campaigns:read"])
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_secret = token_create(user=creative, name="b", scopes=["campaigns:read"])

    assert token_revoke(token_id=revoked.pk, user=creative)

    assert token_authenticate(expired_secret) is None
    assert token_authenticate(revoked_secret) is None
    assert token_authenticate("studio_not-a-token") is None


def test_a_token_of_another_user_cannot_be_revoked(creative, reviewer):
    token, _ = token_create(user=creative, name="a", scopes=["campaigns:read"])

    assert not token_revoke(token_id=token.pk, user=reviewer)
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_using_a_token_records_when_it_was_last_used(client, creative):
    token, secret = token_create(user=creative, name="a", scopes=["campaigns:read"])

    assert Api(client, secret).get("/campaigns").status_code == 200

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_the_command_prints_a_working_token_once(creative, capsys):
    call_command(
        "token_create",
        "cara",
        "--name",
        "ci",
        "--scopes",
        "campaigns:read,campaigns:write",
        "--expires",
        "30",
    )

    out, err = capsys.readouterr()
    secret = out.strip()
    token = token_authenticate(secret)
    assert token.scopes == ["campaigns:read", "campaigns:write"]
    assert token.expires_at > timezone.now() + timedelta(days=29)
    assert "expires" in err


def test_the_command_names_the_problem_of_a_bad_scope(creative):
    with pytest.raises(CommandError, match="scopes: admin: not allowed by your role"):
        call_command("token_create", "cara", "--name", "ci", "--scopes", "admin")


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="username: no user named 'nobody'"):
        call_command("token_create", "nobody", "--name", "ci", "--scopes", "campaigns:read")


def test_the_page_creates_a_token_and_shows_its_secret_once(creative_client, creative):
    page = creative_client.post(
        reverse("token_new"), {"name": "PIM", "scopes": ["campaigns:read"], "expires_days": "7"}
    )

    assert page.status_code == 200
    token = ApiToken.objects.get(user=creative)
    secret = page.context["new_token"]["secret"]
    assert secret in page.content.decode()
    assert token_authenticate(secret) == token
    again = creative_client.get(reverse("api_access")).content.decode()
    assert secret not in again
    assert token.prefix in again


def test_the_page_offers_only_the_scopes_of_the_role_and_refuses_others(creative_client):
    page = creative_client.get(reverse("api_access"))
    assert 'value="campaigns:write"' in page.content.decode()
    assert 'value="review:write"' not in page.content.decode()

    refused = creative_client.post(reverse("token_new"), {"name": "x", "scopes": ["review:write"]})

    assert refused.status_code == 400
    assert "scopes" in refused.context["token_form"].errors
    assert not ApiToken.objects.exists()


def test_the_page_revokes_a_token(creative_client, creative):
    token, secret = token_create(user=creative, name="a", scopes=["campaigns:read"])

    response = creative_client.post(reverse("token_revoke", args=[token.pk]))

    assert response.status_code == 302
    assert token_authenticate(secret) is None


def test_the_page_is_for_users_with_a_role(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("api_access")).status_code == 403


def test_without_credentials_the_api_answers_401_with_a_bearer_challenge(client, db):
    response = Api(client, None).get("/campaigns")

    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_browser_session_works_for_reads_and_needs_csrf_for_writes(creative, campaign):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(creative)
    assert browser.get("/api/v1/campaigns").status_code == 200

    refused = browser.post(f"/api/v1/campaigns/{campaign.pk}/pause")
    assert refused.status_code == 403

    browser.get(reverse("api_access"))  # sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    allowed = browser.post(f"/api/v1/campaigns/{campaign.pk}/pause", headers={"X-CSRFToken": csrf})
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["campaign"]["status"] == "paused"


# --- Kept tokens: a process keeps a token it has looked up until the auth stamp moves --------


def test_a_process_keeps_a_token_it_found_until_the_auth_stamp_moves(
    creative, django_assert_num_queries
):
    from studio import freshness

    token, secret = token_create(user=creative, name="poller", scopes=["campaigns:read"])
    token_authenticate(secret)  # looked up, and last_used_at written

    with django_assert_num_queries(0):
        assert token_authenticate(secret) == token
    freshness.move(freshness.AUTH)  # what a change made in any process does
    with django_assert_num_queries(1):
        assert token_authenticate(secret) == token


def test_without_redis_every_request_reads_the_token_again(
    creative, monkeypatch, django_assert_num_queries
):
    from studio import freshness

    _token, secret = token_create(user=creative, name="poller", scopes=["campaigns:read"])
    monkeypatch.setattr(freshness, "stamp", lambda name: None)
    token_authenticate(secret)

    with django_assert_num_queries(1):
        assert token_authenticate(secret) is not None


def test_a_kept_token_is_refused_once_revoked(creative):
    token, secret = token_create(user=creative, name="a", scopes=["campaigns:read"])
    assert token_authenticate(secret) == token

    token_revoke(token_id=token.pk, user=creative)

    assert token_authenticate(secret) is None


def test_a_kept_token_is_refused_once_its_user_is_deactivated(creative):
    _token, secret = token_create(user=creative, name="a", scopes=["campaigns:read"])
    assert token_authenticate(secret) is not None

    creative.is_active = False
    creative.save()

    assert token_authenticate(secret) is None


def test_a_kept_token_loses_a_scope_when_its_user_loses_the_role(client, creative, campaign):
    from django.contrib.auth.models import Group

    from studio.roles import CREATIVE

    _token, secret = token_create(user=creative, name="a", scopes=["campaigns:read"])
    api = Api(client, secret)
    assert api.get(f"/campaigns/{campaign.pk}").status_code == 200

    creative.groups.remove(Group.objects.get(name=CREATIVE))

    assert_problem(api.get(f"/campaigns/{campaign.pk}"), 403)
