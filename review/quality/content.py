"""Content screening: what is in the picture (NudeNet's detector) and the campaign's rules.

NudeNet 3.4 (MIT licence) ships its ONNX detector inside the wheel (``nudenet/320n.onnx``, a
YOLOv8n at 320 px, 12 MB): 18 classes of exposed and covered body parts plus male and female
faces. It runs on onnxruntime on the CPU, offline, so a fresh install screens content with no
configuration. The model loads once per worker process (``content_detector()``) after its
sha256 is checked against ``STUDIO_CONTENT_MODEL_SHA256``; onnxruntime is imported only here
and only then, so the web process never needs it.

We run the session ourselves with NudeNet's own pre- and post-processing (pad to a square at
the bottom right, resize to 320, channels in [0, 1] in the order NudeDetector gives them;
candidates from 0.2, NMS at 0.45 reporting from 0.25; the same detections to the pixel)
rather than through ``nudenet.NudeDetector``: that class reads files with OpenCV (no alpha,
16-bit or CMYK handling), lets onnxruntime take every core, and loops over 2,100 candidate
boxes in Python. Here the decoded RGB image the other scorers use goes in, one thread by
default, vectorised post-processing.

Rules (``QualityPolicy.content_rules``) say which classes are unwanted at what score and what
follows: ``reject`` or ``review``, each with a reason code of the shared vocabulary.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from review.vocabulary import Reason, ReasonCode
from studio.errors import InputError

logger = logging.getLogger(__name__)

# The detector's output order (nudenet/nudenet.py, 3.4.2).
CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
# sha256 of nudenet/320n.onnx in the nudenet 3.4.2 wheel.
BUNDLED_SHA256 = "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"

INPUT_SIZE = 320
# NudeNet's own cut-offs: candidates from CANDIDATE_SCORE go into non-maximum suppression
# (overlap NMS_IOU), which reports those from MIN_SCORE.
CANDIDATE_SCORE = 0.2
MIN_SCORE = 0.25
NMS_IOU = 0.45
# An image much longer than wide is screened in square tiles along its length (padding it to
# one square would shrink its content to a sliver at 320 px); beyond MAX_TILES it is refused.
SINGLE_PASS_ASPECT = 2.5
TILE_STEP = 0.75
MAX_TILES = 8
# Fewer pixels than this on the short side and there is nothing a 320-px detector can see.
MIN_SIDE = 32

# Rules: what a detection leads to. Codes come from the shared vocabulary.
REJECT, REVIEW = "reject", "review"
ACTIONS = (REJECT, REVIEW)
RULE_CODES = (ReasonCode.NSFW.value, ReasonCode.PERSON.value)
NSFW_CLASSES = (
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
# Faces, and the body parts that only a person shows. Feet are left out on purpose: the
# detector calls a shoe on its own FEET_COVERED often enough to bury a footwear campaign.
PERSON_CLASSES = (
    "FACE_FEMALE",
    "FACE_MALE",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "BELLY_COVERED",
    "BELLY_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
# Measured on scikit-image's photographs: the astronaut's face 0.72, the cameraman's 0.58;
# the only false detection, BELLY_EXPOSED on the moon, 0.39.
NSFW_MIN_SCORE = 0.40
PERSON_MIN_SCORE = 0.50

_RULE_TEXT = {
    ReasonCode.NSFW.value: "It shows exposed intimate body parts.",
    ReasonCode.PERSON.value: "It shows a person, which this campaign's images must not.",
}


class ContentUnavailable(Exception):
    """Why screening cannot run in this process (not installed, file missing or altered)."""


@dataclass
class ScreenResult:
    """The detector's findings on one image, or why it did not look (``skipped``)."""

    detections: list[dict] = field(default_factory=list)  # [{"class", "score", "box"}]
    skipped: str = ""


@dataclass
class ContentCheck:
    """A screen result judged by a campaign's rules."""

    action: str  # "" (nothing unwanted), REVIEW or REJECT
    score: float  # 1 - the best score among the classes the rules name; 1.0 = none seen
    reasons: list[Reason]
    flagged: dict[str, int]  # rule code -> detections it caught
    rules: list[str] = field(default_factory=list)  # per detection: the rule it fired, or ""


def default_content_rules(template_name: str | None = None) -> list[dict]:
    """The rules a new campaign gets: exposed intimate parts are rejected everywhere; in the
    templates named by STUDIO_CONTENT_PERSON_TEMPLATES (product photos) any person goes to
    review, since packshots should not show people; elsewhere faces are allowed."""
    from django.conf import settings

    rules = [
        {
            "code": ReasonCode.NSFW.value,
            "classes": list(NSFW_CLASSES),
            "min_score": NSFW_MIN_SCORE,
            "action": REJECT,
        }
    ]
    if template_name and template_name in settings.STUDIO_CONTENT_PERSON_TEMPLATES:
        rules.append(
            {
                "code": ReasonCode.PERSON.value,
                "classes": list(PERSON_CLASSES),
                "min_score": PERSON_MIN_SCORE,
                "action": REVIEW,
            }
        )
    return rules


def check_content_rules(rules) -> list[dict]:
    """The rules in their stored form, or InputError naming ``content_rules``.

    Each rule: a code from RULE_CODES (once), classes from CLASSES (at least one), a minimum
    score in [MIN_SCORE, 1] and an action in ACTIONS.
    """
    if not isinstance(rules, list):
        raise InputError("content_rules", f"must be a list of rules, got {rules!r}")
    clean, seen = [], set()
    for rule in rules:
        if not isinstance(rule, dict):
            raise InputError("content_rules", f"each rule must be an object, got {rule!r}")
        code = rule.get("code")
        if code not in RULE_CODES:
            raise InputError(
                "content_rules", f"unknown rule code {code!r}; one of {', '.join(RULE_CODES)}"
            )
        if code in seen:
            raise InputError("content_rules", f"rule {code!r} given twice")
        seen.add(code)
        classes = rule.get("classes")
        if not isinstance(classes, list | tuple) or not classes:
            raise InputError("content_rules", f"rule {code!r}: name at least one class")
        unknown = [c for c in classes if c not in CLASSES]
        if unknown:
            raise InputError(
                "content_rules", f"rule {code!r}: unknown classes {', '.join(map(str, unknown))}"
            )
        score = rule.get("min_score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise InputError("content_rules", f"rule {code!r}: min_score must be a number")
        if not (math.isfinite(score) and MIN_SCORE <= score <= 1.0):
            raise InputError(
                "content_rules",
                f"rule {code!r}: min_score must be between {MIN_SCORE} (the detector reports "
                f"nothing weaker) and 1, got {score!r}",
            )
        action = rule.get("action")
        if action not in ACTIONS:
            raise InputError(
                "content_rules", f"rule {code!r}: action must be one of {', '.join(ACTIONS)}"
            )
        clean.append(
            {
                "code": code,
                "classes": [c for c in CLASSES if c in set(classes)],
                "min_score": round(float(score), 3),
                "action": action,
            }
        )
    return clean


def judge(detections: list[dict], rules: list[dict]) -> ContentCheck:
    """Apply a campaign's rules to a screen result: the strictest action any rule calls for,
    a reason per rule that fired (with the detections behind it) and the content score."""
    named = {c for rule in rules for c in rule["classes"]}
    best = max((d["score"] for d in detections if d["class"] in named), default=0.0)
    action, reasons, flagged = "", [], {}
    fired = [""] * len(detections)
    # Reject rules first, so a detection that two rules catch is marked with the stricter.
    for rule in sorted(rules, key=lambda r: r["action"] != REJECT):
        hits = [
            d
            for d in detections
            if d["class"] in rule["classes"] and d["score"] >= rule["min_score"]
        ]
        if not hits:
            continue
        flagged[rule["code"]] = len(hits)
        for index, detection in enumerate(detections):
            if not fired[index] and any(detection is hit for hit in hits):
                fired[index] = rule["code"]
        hits.sort(key=lambda d: -d["score"])
        found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in hits[:3])
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        verb = "rejected" if rule["action"] == REJECT else "sent to review"
        reasons.append(
            Reason(
                rule["code"],
                _RULE_TEXT[rule["code"]],
                f"detector found {found}{more} (at least {rule['min_score']:.2f} is {verb})",
            )
        )
        if rule["action"] == REJECT:
            action = REJECT
        elif action != REJECT:
            action = REVIEW
    return ContentCheck(
        action=action, score=round(1.0 - best, 4), reasons=reasons, flagged=flagged, rules=fired
    )


# --- The model file -------------------------------------------------------------------------


def model_path() -> Path | None:
    """STUDIO_CONTENT_MODEL, or the file bundled in the installed nudenet wheel; None when
    neither is there to point at. nudenet is located, not imported (its __init__ imports
    onnxruntime)."""
    from django.conf import settings

    if settings.STUDIO_CONTENT_MODEL:
        return Path(settings.STUDIO_CONTENT_MODEL)
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "320n.onnx"


_hashes: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime): the system check and the loader
    both ask, and 12 MB is worth hashing once."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def model_problem() -> str:
    """Why the configured detector file cannot be trusted ("" when it can): missing, or a
    sha256 other than STUDIO_CONTENT_MODEL_SHA256."""
    from django.conf import settings

    path = model_path()
    if path is None:
        return (
            "the nudenet package is not installed (the quality workers' `ml` extra), and "
            "STUDIO_CONTENT_MODEL names no file"
        )
    if not path.is_file():
        return f"detector file {path} is missing"
    expected = settings.STUDIO_CONTENT_MODEL_SHA256.lower()
    actual = file_sha256(path)
    if actual != expected:
        return (
            f"detector file {path} has sha256 {actual}, expected {expected} "
            "(STUDIO_CONTENT_MODEL_SHA256): altered or another version"
        )
    return ""


# --- The detector ---------------------------------------------------------------------------


class ContentDetector:
    """One onnxruntime session on the checked model file."""

    def __init__(self, *, path: Path, sha256: str, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ContentUnavailable("onnxruntime is not installed (the `ml` extra)") from None
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ContentUnavailable(f"detector file {path} is missing ({exc})") from None
        # Hash the very bytes the session loads: the file cannot change in between.
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise ContentUnavailable(
                f"detector file {path} has sha256 {actual}, expected {sha256.lower()}"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = onnxruntime.InferenceSession(
                data, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a corrupt file that still matched a hash someone set
            raise ContentUnavailable(f"detector file {path} could not be loaded ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name

    def detect(self, image: Image.Image) -> ScreenResult:
        """Detections in the image's own pixel coordinates, strongest first; or a skipped
        result saying why the image cannot be screened (too small, too narrow)."""
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        h, w = rgb.shape[:2]
        short, long = min(h, w), max(h, w)
        if short < MIN_SIDE:
            return ScreenResult(
                skipped=f"content screening refused: {w}x{h} px is too small to screen "
                f"(at least {MIN_SIDE} px on each side)"
            )
        if long <= SINGLE_PASS_ASPECT * short:
            boxes, scores, classes = self._run(rgb)
        else:
            step = max(1, int(short * TILE_STEP))
            count = math.ceil((long - short) / step) + 1
            if count > MAX_TILES:
                most = 1 + (MAX_TILES - 1) * TILE_STEP
                return ScreenResult(
                    skipped=f"content screening refused: {w}x{h} px is too narrow to screen "
                    f"(aspect ratio {long / short:.0f}:1, at most {most:.2f}:1)"
                )
            parts = []
            for index in range(count):
                start = min(index * step, long - short)
                tile = rgb[:, start : start + short] if w > h else rgb[start : start + short]
                b, s, c = self._run(tile)
                if w > h:
                    b[:, 0] += start
                else:
                    b[:, 1] += start
                parts.append((b, s, c))
            boxes = np.concatenate([p[0] for p in parts])
            scores = np.concatenate([p[1] for p in parts])
            classes = np.concatenate([p[2] for p in parts])
        keep = _nms(boxes, scores)
        detections = [
            {
                "class": CLASSES[int(classes[i])],
                "score": round(float(scores[i]), 3),
                "box": [int(v) for v in boxes[i]],
            }
            for i in keep
        ]
        detections.sort(key=lambda d: -d["score"])
        return ScreenResult(detections=detections)

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate boxes [x, y, w, h] (float, image pixels), scores, class ids."""
        h, w = rgb.shape[:2]
        side = max(h, w)
        padded = cv2.copyMakeBorder(rgb, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT)
        # swapRB: NudeDetector.detect hands its session the channels in B, G, R order (it
        # swaps once converting from cv2.imread and once more in blobFromImage), and its
        # scores are the ones this was checked against; so do the same from RGB.
        blob = cv2.dnn.blobFromImage(
            padded, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0, 0, 0), swapRB=True, crop=False
        )
        output = self.session.run(None, {self.input_name: blob})[0]
        rows = np.squeeze(output, axis=0).T  # (candidates, 4 + classes)
        class_scores = rows[:, 4:]
        best = class_scores.max(axis=1)
        chosen = best >= CANDIDATE_SCORE
        rows, best = rows[chosen], best[chosen]
        classes = class_scores[chosen].argmax(axis=1)
        scale = side / INPUT_SIZE
        cx, cy, bw, bh = (rows[:, i] * scale for i in range(4))
        x = np.clip(cx - bw / 2, 0, w)
        y = np.clip(cy - bh / 2, 0, h)
        boxes = np.stack([x, y, np.minimum(bw, w - x), np.minimum(bh, h - y)], axis=1)
        return boxes.astype(np.float32), best.astype(np.float32), classes


def _nms(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    if len(boxes) == 0:
        return []
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), MIN_SCORE, NMS_IOU)
    return [int(i) for i in np.asarray(kept).ravel()]


_detector: ContentDetector | None = None
_detector_key: tuple | None = None
_detector_error = ""
_load_lock = threading.Lock()


def content_detector() -> ContentDetector:
    """The process's detector, loaded on first use (and again only if settings or the file
    change). Raises ContentUnavailable with the reason; a failed load is remembered, not
    retried per image."""
    global _detector, _detector_key, _detector_error
    from django.conf import settings

    path = model_path()
    if path is None:
        raise ContentUnavailable(model_problem())
    try:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        stamp = None
    key = (str(path), stamp, settings.STUDIO_CONTENT_MODEL_SHA256, settings.STUDIO_CONTENT_THREADS)
    with _load_lock:
        if key != _detector_key:
            _detector, _detector_key, _detector_error = None, key, ""
            try:
                _detector = ContentDetector(
                    path=path,
                    sha256=settings.STUDIO_CONTENT_MODEL_SHA256,
                    threads=settings.STUDIO_CONTENT_THREADS,
                )
            except ContentUnavailable as exc:
                _detector_error = str(exc)
        if _detector is None:
            raise ContentUnavailable(_detector_error)
        return _detector


UNAVAILABLE = "content screening unavailable"


def screen_images(images: list[Image.Image]) -> list[ScreenResult]:
    """The detector's findings per image, or one skipped result per image saying why
    screening did not run ("content screening unavailable: ...")."""
    try:
        detector = content_detector()
    except ContentUnavailable as exc:
        return [ScreenResult(skipped=f"{UNAVAILABLE}: {exc}") for _ in images]
    results = []
    for image in images:
        try:
            results.append(detector.detect(image))
        except Exception as exc:  # one odd image must not stop the batch, nor pass unscreened
            logger.warning("content screening failed on an image: %s", exc, exc_info=True)
            results.append(ScreenResult(skipped=f"content screening failed on this image: {exc}"))
    return results
