"""CLIP text match and unwanted concepts, with open_clip.

The model loads once per worker process (``clip_scorer()``) from settings: an open_clip model
name plus a pretrained tag or a local checkpoint file, optionally a JSON model config to
register first (custom or tiny models). torch and open_clip are imported only here and only
when a model is configured, so the web process never needs them; when they are missing or
nothing is configured, ``clip_score_images`` returns a skipped result with the reason.

    results = clip_score_images(images, prompts=[...], unwanted=[[...], ...])
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from review.vocabulary import Reason, ReasonCode

# A tiny architecture for tests and benchmarks: real open_clip code paths, random weights.
TINY_CLIP_NAME = "studio-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


class ClipUnavailable(Exception):
    """Why CLIP scoring cannot run here (not installed, not configured, failed to load)."""


@dataclass
class ClipResult:
    scores: dict[str, float] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    tags: list[tuple[str, float]] = field(default_factory=list)  # zero-shot, with probability
    skipped: str = ""  # non-empty: CLIP did not run, and this says why


def build_tiny_clip(directory: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny config (``studio-tiny-clip.json``) and a random-weight checkpoint.

    Returns (config path, checkpoint path); point STUDIO_CLIP_CONFIG / STUDIO_CLIP_PRETRAINED
    at them and set STUDIO_CLIP_MODEL=studio-tiny-clip.
    """
    import open_clip
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"{TINY_CLIP_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    checkpoint = directory / f"{TINY_CLIP_NAME}.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


def _smooth(low: float, high: float, value: float) -> float:
    t = min(max((value - low) / (high - low), 0.0), 1.0) if high > low else float(value >= high)
    return t * t * (3.0 - 2.0 * t)


class ClipScorer:
    """One loaded open_clip model; ``score`` embeds images and texts in batches."""

    def __init__(
        self,
        *,
        model_name: str,
        pretrained: str = "",
        config: str = "",
        threads: int = 1,
        match_low: float = 0.15,
        match_high: float = 0.30,
    ) -> None:
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise ClipUnavailable(f"open_clip/torch not installed ({exc.name})") from None
        self._torch = torch
        torch.set_num_threads(threads)
        if config:
            if not Path(config).is_file():
                raise ClipUnavailable(f"STUDIO_CLIP_CONFIG: no such file {config}")
            open_clip.add_model_config(config)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained or None
            )
        except Exception as exc:  # a wrong name or a missing checkpoint: say which
            raise ClipUnavailable(
                f"STUDIO_CLIP_MODEL={model_name!r} / STUDIO_CLIP_PRETRAINED={pretrained!r} "
                f"could not be loaded ({exc})"
            ) from None
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.match_low, self.match_high = match_low, match_high
        self._text_cache: dict[str, object] = {}
        self._lock = threading.Lock()

    def _texts(self, texts: list[str]):
        """Normalised text embeddings; each distinct text is embedded once per process."""
        torch = self._torch
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            with torch.inference_mode():
                embedded = self.model.encode_text(self.tokenizer(missing))
                embedded = embedded / embedded.norm(dim=-1, keepdim=True)
            if len(self._text_cache) > 10_000:
                self._text_cache.clear()
            self._text_cache.update(zip(missing, embedded, strict=True))
        return torch.stack([self._text_cache[t] for t in texts])

    def image_features(self, images: list[Image.Image], *, batch_size: int = 16):
        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.stack(
                    [
                        self.preprocess(im.convert("RGB"))
                        for im in images[start : start + batch_size]
                    ]
                )
                features = self.model.encode_image(batch)
                chunks.append(features / features.norm(dim=-1, keepdim=True))
        return torch.cat(chunks)

    def similarity(self, images: list[Image.Image], texts: list[str], *, batch_size: int = 16):
        """Cosine similarities, one row per image, one column per text."""
        with self._lock:
            return (
                self.image_features(images, batch_size=batch_size) @ self._texts(texts).T
            ).tolist()

    def score(
        self,
        images: list[Image.Image],
        *,
        prompts: list[str],
        unwanted: list[list[str]],
        vocabulary: list[list[str]] | None = None,
        batch_size: int = 16,
    ) -> list[ClipResult]:
        if not (len(images) == len(prompts) == len(unwanted)):
            raise ValueError("images, prompts and unwanted must have the same length")
        if not images:
            return []
        vocabulary = vocabulary or [[] for _ in images]
        with self._lock:
            image_features = self.image_features(images, batch_size=batch_size)
            results = []
            for i, (prompt, concepts) in enumerate(zip(prompts, unwanted, strict=True)):
                texts = [prompt, *concepts]
                sims = (image_features[i : i + 1] @ self._texts(texts).T)[0].tolist()
                result = self._result(sims[0], dict(zip(concepts, sims[1:], strict=True)))
                if vocabulary[i]:
                    words = list(dict.fromkeys(vocabulary[i]))
                    texts = [f"a photo of {word}" for word in words]
                    tag_sims = (image_features[i : i + 1] @ self._texts(texts).T)[0]
                    result.tags = zero_shot(words, tag_sims.tolist())
                results.append(result)
        return results

    def _result(self, match: float, unwanted: dict[str, float]) -> ClipResult:
        result = ClipResult()
        result.measures["clip_similarity"] = match
        result.scores["clip_match"] = _smooth(self.match_low, self.match_high, match)
        if result.scores["clip_match"] < 0.5:
            result.reasons.append(
                Reason(
                    ReasonCode.OFF_PROMPT,
                    "The image does not look like its prompt.",
                    f"CLIP similarity to the prompt {match:.3f}, needs "
                    f"{(self.match_low + self.match_high) / 2:.3f}",
                )
            )
        if unwanted:
            concept, worst = max(unwanted.items(), key=lambda kv: kv[1])
            result.measures["clip_unwanted_max"] = worst
            flagged = {c: s for c, s in unwanted.items() if s > match}
            result.scores["clip_unwanted"] = 0.0 if flagged else 1.0
            for name, sim in sorted(flagged.items(), key=lambda kv: -kv[1]):
                result.reasons.append(
                    Reason(
                        ReasonCode.UNWANTED_CONCEPT,
                        f"It looks like it shows {name!r}.",
                        f"CLIP matches {name!r} better than the prompt: {sim:.3f} > {match:.3f}",
                    )
                )
        return result


# CLIP's own logit scale: cosine similarities times 100 before the softmax.
ZERO_SHOT_SCALE = 100.0
ZERO_SHOT_MIN = 0.2
ZERO_SHOT_MAX_TAGS = 3


def zero_shot(words: list[str], similarities: list[float]) -> list[tuple[str, float]]:
    """The vocabulary words an image most likely shows: softmax over the words, at most
    ZERO_SHOT_MAX_TAGS with probability >= ZERO_SHOT_MIN, most likely first."""
    import math

    top = max(similarities)
    weights = [math.exp(ZERO_SHOT_SCALE * (s - top)) for s in similarities]
    total = sum(weights)
    ranked = sorted(
        ((word, round(w / total, 3)) for word, w in zip(words, weights, strict=True)),
        key=lambda pair: -pair[1],
    )
    return [(word, p) for word, p in ranked if p >= ZERO_SHOT_MIN][:ZERO_SHOT_MAX_TAGS]


_scorer: ClipScorer | None = None
_scorer_key: tuple | None = None
_scorer_error: str = ""
_load_lock = threading.Lock()


def _settings_key() -> tuple:
    from django.conf import settings

    return (
        settings.STUDIO_CLIP_MODEL,
        settings.STUDIO_CLIP_PRETRAINED,
        settings.STUDIO_CLIP_CONFIG,
        settings.STUDIO_CLIP_THREADS,
        settings.STUDIO_CLIP_MATCH_LOW,
        settings.STUDIO_CLIP_MATCH_HIGH,
    )


def clip_scorer() -> ClipScorer:
    """The process's CLIP model, loaded on first use (and again only if settings change).

    Raises ClipUnavailable with the reason; a failed load is remembered, not retried per image.
    """
    global _scorer, _scorer_key, _scorer_error
    key = _settings_key()
    model_name, pretrained, config, threads, low, high = key
    if not model_name:
        raise ClipUnavailable("no CLIP model configured (STUDIO_CLIP_MODEL)")
    with _load_lock:
        if key != _scorer_key:
            _scorer, _scorer_key, _scorer_error = None, key, ""
            try:
                _scorer = ClipScorer(
                    model_name=model_name,
                    pretrained=pretrained,
                    config=config,
                    threads=threads,
                    match_low=low,
                    match_high=high,
                )
            except ClipUnavailable as exc:
                _scorer_error = str(exc)
        if _scorer is None:
            raise ClipUnavailable(_scorer_error)
        return _scorer


def clip_score_images(
    images: list[Image.Image],
    *,
    prompts: list[str],
    unwanted: list[list[str]],
    vocabulary: list[list[str]] | None = None,
    batch_size: int | None = None,
) -> list[ClipResult]:
    """CLIP scores for a batch, or one skipped result per image saying why CLIP did not run."""
    from django.conf import settings

    try:
        scorer = clip_scorer()
    except ClipUnavailable as exc:
        return [ClipResult(skipped=f"CLIP scoring skipped: {exc}") for _ in images]
    return scorer.score(
        images,
        prompts=prompts,
        unwanted=unwanted,
        vocabulary=vocabulary,
        batch_size=batch_size or settings.STUDIO_CLIP_BATCH_SIZE,
    )
