"""RQ jobs of the quality queue."""

from __future__ import annotations

from review.services import item_score


def score_item(item_id: str) -> str | None:
    result = item_score(item_id=item_id)
    return result.verdict if result else None
