"""System checks of the review app: the content detector's model file.

`manage.py check` (and every command that runs checks: migrate, runserver, up) fails with a
clear message when the detector file is missing or is not the file whose sha256 the
settings pin. A process without the detector installed at all (the web image, which has no
`ml` extra) gets a warning instead: it never scores images, and a quality worker without it
sends every image to review with the reason "content screening unavailable".
"""

from __future__ import annotations

import importlib.util

from django.conf import settings
from django.core.checks import Error, Warning, register

INSTALL_HINT = "Install the `ml` extra (pip install -e '.[ml]'), which brings nudenet==3.4.2."


@register()
def content_detector_check(app_configs=None, **kwargs) -> list:
    from review.quality.content import model_path, model_problem

    explicit = bool(settings.STUDIO_CONTENT_MODEL)
    if not explicit and model_path() is None:
        return [
            Warning(
                "Content screening is not installed here: the nudenet package is missing, so "
                "a quality worker in this environment sends every image to review "
                '("content screening unavailable").',
                hint=INSTALL_HINT,
                id="review.W001",
            )
        ]
    problem = model_problem()
    if problem:
        return [
            Error(
                f"Content screening cannot start: {problem}.",
                hint=(
                    "Reinstall nudenet==3.4.2 (its wheel ships nudenet/320n.onnx), or point "
                    "STUDIO_CONTENT_MODEL at the detector file and STUDIO_CONTENT_MODEL_SHA256 "
                    "at its sha256. Until then no image is approved automatically."
                ),
                id="review.E001",
            )
        ]
    if importlib.util.find_spec("onnxruntime") is None:
        return [
            Warning(
                "Content screening is not installed here: onnxruntime is missing, so a "
                "quality worker in this environment sends every image to review.",
                hint=INSTALL_HINT,
                id="review.W002",
            )
        ]
    return []
