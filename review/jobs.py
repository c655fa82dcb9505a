"""RQ jobs of the quality queue."""

from __future__ import annotations

from review.services import item_score, items_score


def score_item(item_id: str) -> str | None:
    result = item_score(item_id=item_id)
    return result.verdict if result else None


def score_items(item_ids: list[str]) -> list[str]:
    """A batch: CLIP embeds the images together."""
    return [result.verdict for result in items_score(item_ids=item_ids)]
