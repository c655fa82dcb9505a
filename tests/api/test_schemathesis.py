"""Generated requests for every operation of the OpenAPI document (Schemathesis, a bounded
number of examples each): no answer is a 5xx, and every documented answer matches its schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from studio.tokens import scopes_allowed, token_create
from tests.conftest import make_user

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def wsgi_in_test_transaction(db):
    """As Django's test client does: the test's transaction survives each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, campaign, settings):
    settings.STUDIO_API_RATE_LIMIT = 1_000_000
    user = make_user("integrator", "admin")
    _token, secret = token_create(user=user, name="fuzz", scopes=scopes_allowed(user))
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_gets_a_server_error_or_an_answer_off_its_schema(
    case, bearer, handoffs, wsgi_in_test_transaction
):
    case.call_and_validate(
        headers=bearer,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
