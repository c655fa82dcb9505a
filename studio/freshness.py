"""Stamps in Redis that say when a process must forget what it derived from some rows.

A process may keep an answer (a token and its user's roles, a catalogue search) for as long as
the stamp it was read under has not moved. ``changed(name)`` moves a stamp: now, and again when
the transaction commits, since a reader between the two may have read the old rows under the
new stamp. Without Redis there is no stamp (``stamp`` returns None) and nothing may be kept.

Base layer: imports no app.
"""

from __future__ import annotations

import functools
import logging
import secrets

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)
PREFIX = "studio:stamp:"


@functools.cache
def redis_client():
    """One client (and its connection pool) per process: a new connection per request would
    cost more than the request."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def stamp(name: str) -> bytes | None:
    """The current stamp for ``name`` (None without Redis)."""
    from redis.exceptions import RedisError

    key = PREFIX + name
    try:
        client = redis_client()
        value = client.get(key)
        if value is None:  # a new (or emptied) Redis: start from a value never used before
            client.set(key, secrets.token_hex(8), nx=True)
            value = client.get(key)
        return value
    except RedisError:
        return None


AUTH = "auth"  # tokens, users and their roles (studio.tokens keeps tokens under it)
CATALOGUE = "catalogue"  # catalogue entries (the API keeps search answers under it)
STAMPS = (AUTH, CATALOGUE)


def move(name: str) -> None:
    """Move ``name``'s stamp now (``changed`` is for writes inside a transaction)."""
    from redis.exceptions import RedisError

    try:
        redis_client().set(PREFIX + name, secrets.token_hex(8))
    except RedisError:
        log.warning("Redis is away: the %s stamp did not move", name)


def changed(name: str) -> None:
    """The rows behind ``name`` changed: every process forgets what it keeps under it."""
    move(name)
    transaction.on_commit(lambda: move(name))


def forget_all() -> None:
    """Every stamp moves: after a restore, and between tests (a rolled-back test moves none)."""
    for name in STAMPS:
        move(name)


def kept(key: str | None) -> bytes | None:
    """An answer kept in Redis under ``key`` (one that names its stamp), or None."""
    from redis.exceptions import RedisError

    if key is None:
        return None
    try:
        return redis_client().get(key)
    except RedisError:
        return None


def keep(key: str | None, body: bytes, *, seconds: int) -> None:
    """Keep ``body`` under ``key`` for at most ``seconds`` (nothing without Redis)."""
    from redis.exceptions import RedisError

    if key is None:
        return
    try:
        redis_client().set(key, body, ex=seconds)
    except RedisError:
        pass
