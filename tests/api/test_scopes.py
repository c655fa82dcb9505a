"""Scopes × roles: a token holds only scopes its user's role allows, and each endpoint needs
its scope; a role taken away takes its scopes with it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from studio import roles
from studio.errors import InputError
from studio.models import ApiToken
from studio.tokens import SCOPES, scopes_allowed, token_create
from tests.api.conftest import Api, assert_problem
from tests.conftest import make_user

ROLE_SCOPES = {
    roles.CREATIVE: {"campaigns:read", "campaigns:write", "catalogue:read"},
    roles.REVIEWER: {"campaigns:read", "review:write", "catalogue:read"},
    roles.MANAGER: {"campaigns:read", "catalogue:read", "reports:read"},
    roles.ADMIN: set(SCOPES),
    None: set(),
}


@pytest.mark.parametrize("role", list(ROLE_SCOPES))
@pytest.mark.parametrize("scope", list(SCOPES))
def test_a_token_may_hold_a_scope_only_if_the_role_allows_it(db, role, scope):
    user = make_user("someone", *([role] if role else []))
    allowed = scope in ROLE_SCOPES[role]

    if allowed:
        token, _ = token_create(user=user, name="t", scopes=[scope])
        assert token.scopes == [scope]
    else:
        with pytest.raises(InputError):
            token_create(user=user, name="t", scopes=[scope])
    assert set(scopes_allowed(user)) == ROLE_SCOPES[role]


# (method, path template, scope it needs)
ENDPOINTS = [
    ("get", "/campaigns", "campaigns:read"),
    ("get", "/campaigns/{campaign}", "campaigns:read"),
    ("get", "/campaigns/{campaign}/items", "campaigns:read"),
    ("get", "/templates", "campaigns:read"),
    ("get", "/recipes", "campaigns:read"),
    ("get", "/items/{item}", "campaigns:read"),
    ("post", "/campaigns/{campaign}/priority", "campaigns:write"),
    ("post", "/campaigns", "campaigns:write"),
    ("post", "/review/claim", "review:write"),
    ("get", "/catalogue/search", "catalogue:read"),
    ("get", "/webhooks", "campaigns:read"),
    ("get", "/reports/costs", "reports:read"),
    ("post", "/campaigns/estimate", "campaigns:read"),
    ("get", "/items/{item}/image", "catalogue:read"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_each_endpoint_needs_its_scope(client, admin_user, campaign, method, path, scope):
    path = path.format(campaign=campaign.pk, item=campaign.items.first().pk)
    others = [s for s in SCOPES if s != scope and s != "admin"]
    without = Api(client, token_create(user=admin_user, name="w", scopes=others)[1])
    with_it = Api(client, token_create(user=admin_user, name="y", scopes=[scope])[1])
    body = {"priority": "high"} if path.endswith("priority") else {}

    call = (lambda api: api.post(path, body)) if method == "post" else (lambda api: api.get(path))
    refused = call(without)
    allowed = call(with_it)

    assert "needs the " + scope in assert_problem(refused, 403)["detail"]
    assert allowed.status_code != 403, allowed.content


def test_a_role_taken_away_takes_its_scopes_with_it(client, creative, campaign):
    _token, secret = token_create(
        user=creative, name="t", scopes=["campaigns:write", "campaigns:read"]
    )
    api = Api(client, secret)
    assert api.post(f"/campaigns/{campaign.pk}/priority", {"priority": "high"}).status_code == 200

    creative.groups.remove(Group.objects.get(name=roles.CREATIVE))
    del creative._studio_roles

    assert_problem(api.post(f"/campaigns/{campaign.pk}/priority", {"priority": "high"}), 403)
    assert ApiToken.objects.filter(user=creative).exists()
