"""``{{ amount|money }}`` (two places) or ``{{ amount|money:4 }}``: money in the configured
currency, rounded once, here (generation.costs.money)."""

from __future__ import annotations

from django import template

from generation.costs import currency_symbol
from generation.costs import money as _money

register = template.Library()


@register.filter
def money(amount, places: int = 2) -> str:
    try:
        places = int(places)
    except (TypeError, ValueError):
        places = 2
    return _money(amount, places)


@register.simple_tag
def currency() -> str:
    return currency_symbol()
