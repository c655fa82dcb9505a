"""Rates, prices and the currency come from settings, checked when Studio starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def settings_import(code: str = "import studio.settings", **overrides: str):
    """Import studio.settings in a fresh interpreter (settings run once per process)."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "a-key-for-this-test",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        **overrides,
    }
    for name in ("STUDIO_EMBEDDED", "EMAIL_HOST", "EMAIL_BACKEND"):
        if name not in overrides:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STUDIO_CURRENCY", "pounds", "STUDIO_CURRENCY: expected a three-letter ISO 4217 code"),
        ("STUDIO_GPU_HOURLY_RATE", "-1", "STUDIO_GPU_HOURLY_RATE: must be a number at least 0"),
        ("STUDIO_CPU_HOURLY_RATE", "NaN", "STUDIO_CPU_HOURLY_RATE: must be a number at least 0"),
        ("STUDIO_REVIEWER_HOURLY_RATE", "lots", "STUDIO_REVIEWER_HOURLY_RATE: expected a decimal"),
        ("STUDIO_STORAGE_GB_MONTH_RATE", "-0.5", "STUDIO_STORAGE_GB_MONTH_RATE: must be a number"),
        ("STUDIO_BUDGET_MAX", "0", "STUDIO_BUDGET_MAX: must be a number greater than 0"),
        ("STUDIO_ESTIMATE_SECONDS_PER_STEP", "0", "STUDIO_ESTIMATE_SECONDS_PER_STEP: must be"),
    ],
)
def test_a_bad_rate_or_currency_stops_the_start_naming_the_variable(name, value, message):
    result = settings_import(**{name: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_the_defaults_price_in_pounds_and_mail_goes_to_the_console():
    code = (
        "import studio.settings as s; "
        "print(s.STUDIO_CURRENCY, s.STUDIO_GPU_HOURLY_RATE, s.STUDIO_CPU_HOURLY_RATE, "
        "s.STUDIO_REVIEWER_HOURLY_RATE, s.STUDIO_STORAGE_GB_MONTH_RATE, s.EMAIL_BACKEND)"
    )
    result = settings_import(code, STUDIO_CURRENCY="gbp")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "GBP",
        "1.20",
        "0.10",
        "25.00",
        "0.02",
        "django.core.mail.backends.console.EmailBackend",
    ]


def test_an_smtp_host_sends_mail_through_smtp():
    code = "import studio.settings as s; print(s.EMAIL_BACKEND, s.EMAIL_PORT)"
    result = settings_import(code, EMAIL_HOST="smtp.example.com", EMAIL_PORT="587")

    assert result.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend", "587"]
