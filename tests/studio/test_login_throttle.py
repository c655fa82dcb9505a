"""Sign-in throttling per IP and per username (Redis), its message, its audit rows;
password validators and session lifetime."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from studio.login import _redis
from studio.models import LoginAttempt
from studio.services import DEMO_PASSWORD_DEFAULT, DEMO_USERNAMES
from tests.conftest import make_user

PASSWORD = "right-horse-battery-9"


@pytest.fixture(autouse=True)
def _clean_counters(settings):
    settings.STUDIO_LOGIN_LIMIT = 3
    settings.STUDIO_LOGIN_WINDOW_SECONDS = 900

    conn = _redis()

    def clear():
        keys = list(conn.scan_iter("studio:login:*"))
        if keys:
            conn.delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture
def user(db) -> User:
    return make_user("lena", password=PASSWORD)


def _post(client, username: str, password: str, ip: str = "203.0.113.7", path: str | None = None):
    return client.post(
        path or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT="pytest-browser",
    )


def test_a_wrong_password_is_a_form_error_and_an_audit_row(client, user):
    response = _post(client, "lena", "wrong")
    assert response.status_code == 200
    attempt = LoginAttempt.objects.get()
    assert (attempt.username, attempt.ip, attempt.outcome) == ("lena", "203.0.113.7", "failed")
    assert attempt.user_agent == "pytest-browser"


def test_after_the_limit_the_username_is_refused_even_with_the_right_password(client, user):
    for _ in range(3):
        assert _post(client, "lena", "wrong").status_code == 200
    response = _post(client, "lena", PASSWORD, ip="198.51.100.1")  # another IP: still refused
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "try again in 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert list(LoginAttempt.objects.values_list("outcome", flat=True).order_by("pk")) == [
        "failed",
        "failed",
        "failed",
        "refused",
    ]


def test_one_ip_guessing_many_usernames_is_refused(client, user):
    for name in ("a", "b", "c"):
        _post(client, name, "wrong", ip="192.0.2.9")
    assert _post(client, "lena", PASSWORD, ip="192.0.2.9").status_code == 429
    # The same account from elsewhere still signs in: the IP was throttled, not the user.
    assert _post(client, "lena", PASSWORD, ip="192.0.2.10").status_code == 302


def test_a_successful_sign_in_forgives_the_usernames_earlier_failures(client, user):
    for ip in ("192.0.2.1", "192.0.2.2"):
        _post(client, "lena", "wrong", ip=ip)
    assert _post(client, "lena", PASSWORD, ip="192.0.2.3").status_code == 302
    client.logout()
    for ip in ("192.0.2.4", "192.0.2.5"):
        _post(client, "lena", "wrong", ip=ip)
    assert _post(client, "lena", PASSWORD, ip="192.0.2.6").status_code == 302


def test_the_admins_sign_in_is_throttled_too(client, db):
    make_user("boss", password=PASSWORD).__class__.objects.filter(username="boss").update(
        is_staff=True
    )
    for _ in range(3):
        _post(client, "boss", "wrong", path="/admin/login/")
    response = _post(client, "boss", PASSWORD, path="/admin/login/")
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert LoginAttempt.objects.filter(username="boss", outcome="refused").count() == 1


def test_behind_a_proxy_the_client_is_the_address_the_proxy_saw(client, user, settings):
    settings.STUDIO_PROXY_COUNT = 1
    client.post(
        reverse("login"),
        {"username": "lena", "password": "wrong"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.50",  # the first part is the client's own word
    )
    assert LoginAttempt.objects.get().ip == "203.0.113.50"


def test_a_redis_outage_lets_sign_ins_through_and_still_audits(client, user, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    for _ in range(4):
        _post(client, "lena", "wrong")
    assert _post(client, "lena", PASSWORD).status_code == 302
    assert LoginAttempt.objects.filter(outcome="failed").count() == 4


def test_password_validators_refuse_short_common_and_numeric_passwords(db):
    for weak in ("short1", "password123", "1234567890123"):
        with pytest.raises(ValidationError):
            validate_password(weak, user=User(username="someone"))


def test_the_demo_password_satisfies_the_validators_for_every_demo_user():
    for username in DEMO_USERNAMES.values():
        validate_password(DEMO_PASSWORD_DEFAULT, user=User(username=username))


def test_sessions_expire_after_twelve_hours_by_default(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
