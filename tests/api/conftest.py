"""API clients: a persona's token sent as a Bearer header."""

from __future__ import annotations

import pytest

from studio.tokens import scopes_allowed, token_create


class Api:
    """The Django test client with a token, talking JSON to /api/v1/."""

    def __init__(self, client, secret: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def _call(self, method: str, path: str, json=None, headers=None, **kwargs):
        call = getattr(self.client, method)
        if json is not None:
            kwargs |= {"data": json, "content_type": "application/json"}
        return call(f"/api/v1{path}", headers=self.headers | (headers or {}), **kwargs)

    def get(self, path, **kwargs):
        return self._call("get", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self._call("post", path, json=json if json is not None else {}, **kwargs)

    def patch(self, path, json=None, **kwargs):
        return self._call("patch", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self._call("delete", path, **kwargs)


def api_for(client, user, scopes=None) -> Api:
    _token, secret = token_create(
        user=user, name="tests", scopes=scopes if scopes is not None else scopes_allowed(user)
    )
    return Api(client, secret)


@pytest.fixture
def creative_api(client, creative):
    return api_for(client, creative)


@pytest.fixture
def reviewer_api(client, reviewer):
    return api_for(client, reviewer)


@pytest.fixture
def manager_api(client, manager):
    return api_for(client, manager)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Rate-limit counters live in Redis (the test database number): none carry over."""
    from studio import queues

    queues.connection().flushdb()
    yield


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body
