"""JSON log lines (STUDIO_LOG_FORMAT=json): one object per line for a log shipper.

A record that carries ids (``logger.info("...", extra={"campaign": pk, "item": pk})``, or
``campaign_id`` / ``item_id`` / ``job_id`` attributes) gets them as fields of their own, so a
search for one item finds every line about it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Record attributes copied into the line when present (the first name wins per field).
ID_FIELDS: dict[str, tuple[str, ...]] = {
    "campaign": ("campaign", "campaign_id"),
    "item": ("item", "item_id"),
    "items": ("items", "item_ids"),
    "job": ("job", "job_id"),
    "status_code": ("status_code",),
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field, names in ID_FIELDS.items():
            for name in names:
                value = getattr(record, name, None)
                if value is not None and value != "":
                    line[field] = _plain(value)
                    break
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _plain(value: object) -> object:
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    if isinstance(value, int | float | bool):
        return value
    return str(value)
