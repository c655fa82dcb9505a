"""Settings come from the environment; a bad value fails at start and names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from studio.env import (
    check_redis_url,
    database_from_url,
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_str,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["1", "true", "Yes", " on "])
def test_env_bool_reads_true_spellings(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STUDIO_FLAG", value)
    assert env_bool("STUDIO_FLAG") is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_env_bool_reads_false_spellings(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STUDIO_FLAG", value)
    assert env_bool("STUDIO_FLAG", default=True) is False


def test_env_bool_uses_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_FLAG", raising=False)
    assert env_bool("STUDIO_FLAG", default=True) is True


def test_env_bool_refuses_anything_else_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STUDIO_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"STUDIO_FLAG.*'maybe'"):
        env_bool("STUDIO_FLAG")


def test_env_int_parses_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_N", "42")
    assert env_int("STUDIO_N", 1) == 42
    monkeypatch.setenv("STUDIO_N", " ")
    assert env_int("STUDIO_N", 7) == 7


@pytest.mark.parametrize("value", ["ten", "1.5", "0x10"])
def test_env_int_refuses_a_non_integer_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STUDIO_N", value)
    with pytest.raises(ImproperlyConfigured, match="STUDIO_N: expected an integer"):
        env_int("STUDIO_N", 1)


def test_env_int_refuses_a_value_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_N", "5")
    with pytest.raises(ImproperlyConfigured, match="STUDIO_N: must be at least 10, got 5"):
        env_int("STUDIO_N", 60, minimum=10)


def test_env_float_and_decimal_refuse_text_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STUDIO_X", "lots")
    with pytest.raises(ImproperlyConfigured, match="STUDIO_X"):
        env_float("STUDIO_X", 0.5)
    with pytest.raises(ImproperlyConfigured, match="STUDIO_X"):
        env_decimal("STUDIO_X", "1.20")
    monkeypatch.setenv("STUDIO_X", "0.75")
    assert env_float("STUDIO_X", 0.5) == 0.75
    assert env_decimal("STUDIO_X", "1.20") == Decimal("0.75")


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_HOSTS", " a.example, ,b.example ")
    assert env_list("STUDIO_HOSTS", []) == ["a.example", "b.example"]


def test_a_file_variable_supplies_a_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("STUDIO_TOKEN", "from-plain-variable")
    monkeypatch.setenv("STUDIO_TOKEN_FILE", str(secret))
    assert env_str("STUDIO_TOKEN") == "s3cret"  # the file wins, stripped


def test_an_unreadable_secret_file_names_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STUDIO_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="STUDIO_TOKEN_FILE: cannot read"):
        env_str("STUDIO_TOKEN")


def test_database_url_with_host_port_and_options() -> None:
    db = database_from_url(
        "DATABASE_URL", "postgres://app:p%40ss@db.example:6543/studio?sslmode=require"
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("studio", "app", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.example", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_with_a_socket_directory_in_the_host_query_parameter() -> None:
    db = database_from_url(
        "DATABASE_URL", "postgres://postgres@/studio?host=/srv/Studio%20Data/postgres"
    )
    assert db["HOST"] == "/srv/Studio Data/postgres"
    assert db["PORT"] == ""
    assert "host" not in db["OPTIONS"]


def test_database_url_with_a_percent_encoded_socket_directory_as_host() -> None:
    db = database_from_url("DATABASE_URL", "postgresql://postgres@%2Fvar%2Frun%2FPostgreSQL/studio")
    # Case kept: a socket directory is a path, not a host name.
    assert db["HOST"] == "/var/run/PostgreSQL"
    assert db["NAME"] == "studio"


def test_database_url_with_an_ipv6_host() -> None:
    db = database_from_url("DATABASE_URL", "postgres://u@[::1]:5433/studio")
    assert (db["HOST"], db["PORT"]) == ("::1", "5433")


@pytest.mark.parametrize(
    "url", ["mysql://u@h/studio", "sqlite:///studio.sqlite3", "redis://localhost:6379/0"]
)
def test_database_url_refuses_anything_but_postgresql(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL: Studio needs PostgreSQL"):
        database_from_url("DATABASE_URL", url)


def test_database_url_refuses_a_url_without_a_database_name() -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL: the URL names no database"):
        database_from_url("DATABASE_URL", "postgres://u@localhost:5432/")


def test_database_url_refuses_a_bad_port() -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL: bad port"):
        database_from_url("DATABASE_URL", "postgres://u@localhost:99999/studio")


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://cache.example/1", "unix:///tmp/r.sock?db=0"]
)
def test_redis_url_accepts_redis_schemes(url: str) -> None:
    assert check_redis_url("REDIS_URL", url) == url


def test_redis_url_refuses_other_schemes() -> None:
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        check_redis_url("REDIS_URL", "http://localhost:6379")


def _import_settings(**overrides: str | None) -> subprocess.CompletedProcess[str]:
    """Import studio.settings in a fresh interpreter: settings run once per process."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "a-key-for-this-test",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
    }
    env.pop("SECRET_KEY_FILE", None)
    env.pop("STUDIO_EMBEDDED", None)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-c", "import studio.settings"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_import_with_a_complete_environment() -> None:
    result = _import_settings()
    assert result.returncode == 0, result.stderr


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off() -> None:
    result = _import_settings(SECRET_KEY=None)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY" in result.stderr


def test_settings_allow_a_missing_secret_key_in_debug() -> None:
    result = _import_settings(SECRET_KEY=None, DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_the_embedded_default_makes_a_private_secret_key_once_and_keeps_it(
    tmp_path: Path,
) -> None:
    def key_of_a_fresh_process() -> str:
        result = _import_settings(
            SECRET_KEY=None,
            STUDIO_EMBEDDED="1",
            STUDIO_VAR_DIR=str(tmp_path),
        )
        assert result.returncode == 0, result.stderr
        return (tmp_path / "secret_key").read_text()

    first = key_of_a_fresh_process()
    assert len(first) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert key_of_a_fresh_process() == first


def test_settings_read_the_secret_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-file\n")
    result = _import_settings(SECRET_KEY=None, SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr


def test_settings_refuse_a_non_postgres_database_url() -> None:
    result = _import_settings(DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "perhaps"),
        ("STUDIO_MAX_CSV_ROWS", "0"),
        ("STUDIO_BATCH_SIZE", "four"),
        ("STUDIO_GPU_HOURLY_RATE", "cheap"),
        ("STUDIO_SELFHOST_GPU_PRICE", "-5"),
        ("STUDIO_SELFHOST_AMORTISATION_MONTHS", "0"),
        ("STUDIO_SELFHOST_SECONDS_PER_IMAGE", "0"),
        ("STUDIO_API_IMAGE_PRICES", "sdxl-base:0.04"),
        ("STUDIO_API_IMAGE_PRICES", "sd15=free"),
    ],
)
def test_settings_name_the_variable_with_a_bad_value(name: str, value: str) -> None:
    result = _import_settings(**{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr


def test_settings_refuse_quality_thresholds_in_the_wrong_order() -> None:
    result = _import_settings(STUDIO_QUALITY_APPROVE_AT="0.3", STUDIO_QUALITY_REJECT_BELOW="0.6")
    assert result.returncode != 0
    assert "STUDIO_QUALITY_REJECT_BELOW" in result.stderr
