from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir) -> dict:
    """The tiny random-weight SD model and its two LoRAs, built once per test session.

    ``{"model": <diffusers folder>, "loras": {"tiny-style-a": <file>, "tiny-style-b": <file>}}``
    """
    from generation.tiny import tiny_model_paths

    return tiny_model_paths(tiny_model_dir / "tiny")


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_model_dir) -> dict:
    """The tiny random-weight SDXL model and its LoRA, built once per test session."""
    from generation.tiny import build_tiny_sdxl_model

    return build_tiny_sdxl_model(tiny_model_dir / "tiny-xl")


class FakeProvider:
    """A local HTTP server that answers like a provider: scripted responses per path.

    ``answer(path, status, body, headers, delay)`` queues one response for that path (any
    method); the last one queued for a path repeats. ``calls`` records every request as
    ``(method, path, headers, body)``.
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.scripts: dict[str, list[tuple]] = {}
        self.calls: list[tuple[str, str, dict, bytes]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                import time

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                provider.calls.append((self.command, path, dict(self.headers), body))
                script = provider.scripts.get(path) or [(404, b'{"detail":"Not Found"}', {}, 0)]
                status, payload, headers, delay = script.pop(0) if len(script) > 1 else script[0]
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path, status=200, body=b"", headers=None, delay=0.0, json=None):
        import json as json_module

        if json is not None:
            body = json_module.dumps(json).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.scripts.setdefault(path, []).append((status, body, headers or {}, delay))

    def posts(self, path: str) -> list[tuple[str, str, dict, bytes]]:
        return [call for call in self.calls if call[0] == "POST" and call[1] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(settings):
    """A fake provider on 127.0.0.1 and fast HTTP retries pointed at nothing else."""
    fake = FakeProvider()
    settings.STUDIO_HTTP_RETRIES = 2
    settings.STUDIO_HTTP_BACKOFF_SECONDS = 0.01
    settings.STUDIO_HTTP_TIMEOUT_SECONDS = 5
    settings.STUDIO_A1111_URL = fake.url
    settings.STUDIO_A1111_USER = ""
    settings.STUDIO_STABILITY_URL = fake.url
    settings.STABILITY_API_KEY = "sk-test-key"
    yield fake
    fake.close()


def png_bytes(color=(200, 40, 40), size=(64, 64)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeBackend:
    """Stands in for a generation backend (generation.backends.get_backend): every request
    gets a small image that took ``seconds`` on ``device``; ``calls`` counts the batches."""

    def __init__(self, seconds: float = 2.0, device: str = "cuda:0 Test GPU") -> None:
        self.seconds, self.device, self.calls = seconds, device, 0

    def generate(self, model, loras, requests, **options):
        from PIL import Image

        from generation.backends import GeneratedImage

        self.calls += 1
        return [
            GeneratedImage(
                image=Image.new("RGB", (r.width, r.height), (120, 80, 40)),
                seed=r.seed,
                duration_s=self.seconds,
                device=self.device,
                batch_size=len(requests),
            )
            for r in requests
        ]


@pytest.fixture
def fake_backend(monkeypatch):
    import generation.backends

    backend = FakeBackend()
    monkeypatch.setattr(generation.backends, "get_backend", lambda name: backend)
    return backend


@pytest.fixture
def priced(settings, base_model):
    """Images at a round price: no compute charge, a fee of 0.10 per image on the model, so
    an image costs exactly 0.10 whether expected (configured rates) or recorded."""
    from decimal import Decimal

    from generation.models import BaseModelVersion

    settings.STUDIO_GPU_HOURLY_RATE = Decimal(0)
    settings.STUDIO_CPU_HOURLY_RATE = Decimal(0)
    settings.STUDIO_BATCH_SIZE_DIFFUSERS = 4
    BaseModelVersion.objects.filter(pk=base_model.pk).update(cost_per_image=Decimal("0.10"))
    base_model.refresh_from_db()
    return Decimal("0.10")


def campaign_jobs(campaign) -> list[list[str]]:
    """The campaign's queued items grouped by the generation job that carries them."""
    from generation.models import Item

    jobs: dict[str, list[str]] = {}
    rows = campaign.items.filter(status=Item.Status.QUEUED).order_by("row_index", "variation")
    for pk, job_id in rows.values_list("pk", "job_id"):
        jobs.setdefault(job_id, []).append(str(pk))
    return list(jobs.values())
