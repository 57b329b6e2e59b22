"""Test helpers for dogclient: a real HTTP server on 127.0.0.1 playing the API, generated images.

Imported by tests/client (its conftest puts this folder on sys.path); the name is unique so it
cannot clash with other services' test helpers.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]

# What the fake API answers, best first; a prefix of top_k entries is returned.
FAKE_BREEDS = [
    ("Labrador retriever", 0.912, 95),
    ("Golden retriever", 0.051, 76),
    ("Chesapeake bay retriever", 0.02, 40),
    ("Flat-coated retriever", 0.01, 70),
    ("Curly-coated retriever", 0.007, 55),
    ("Newfoundland", 0.0, 105),
]
FAKE_MODEL = {"name": "resnet50-dogimages", "version": "2026-11-21T12:00:00Z"}


def dog_photos_dir() -> Path:
    """The shared real photos (``../shared/data/dog-photos`` from the repo root), or $DOG_PHOTOS_DIR."""
    return Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT / ".." / "shared" / "data" / "dog-photos")


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON, str/bytes -> sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def image(self) -> Image.Image:
        """The image the client sent, decoded as the API would."""
        image = Image.open(io.BytesIO(base64.b64decode(self.json()["image"], validate=True)))
        image.load()
        return image


class FakeApi:
    """A real HTTP server on 127.0.0.1 (free port) standing in for the API front.

    Scripted replies (``queue``) are served first, in order; after them every request gets what the
    API would: ``POST /predict`` decodes the image and answers with ``FAKE_BREEDS``, ``GET /health``
    answers ok. With ``required_key`` set it refuses other keys as API Gateway does.
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self.replies: deque[Reply] = deque()
        self.required_key: str | None = None
        self.is_dog: bool | None = True
        self.dog_probability: float | None = 0.99
        self.release = threading.Event()  # set at teardown so delayed replies end at once
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def queue(self, status: int, body: Any = None, headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        self.replies.append(Reply(status, body, headers or {}, delay))

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = RecordedRequest(
            handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body
        )
        with self._lock:
            self.requests.append(request)
            scripted = self.replies.popleft() if self.replies else None
        reply = scripted or self._default_reply(request)
        if reply.delay:
            self.release.wait(reply.delay)
        if isinstance(reply.body, (dict, list)):
            payload, content_type = json.dumps(reply.body).encode(), "application/json"
        elif isinstance(reply.body, str):
            payload, content_type = reply.body.encode(), "text/html"
        else:
            payload, content_type = reply.body or b"", "application/octet-stream"
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def _default_reply(self, request: RecordedRequest) -> Reply:
        request_id = f"req-{len(self.requests)}"
        if self.required_key is not None and request.headers.get("x-api-key") != self.required_key:
            return Reply(403, {"message": "Forbidden"})
        if request.method == "GET" and request.path == "/health":
            return Reply(
                200, {"status": "ok", "endpoint_name": "local-dogbreed", "version": "0.1.0", "request_id": request_id}
            )
        if request.method != "POST" or request.path != "/predict":
            return Reply(404, {"error": {"code": "not_found", "message": "No route."}, "request_id": request_id})
        document = request.json()
        top_k = document.get("top_k", 5)
        if not isinstance(top_k, int) or not 1 <= top_k <= len(FAKE_BREEDS):
            message = f"top_k must be from 1 to {len(FAKE_BREEDS)}, got {top_k}."
            return Reply(422, {"error": {"code": "invalid_parameter", "message": message}, "request_id": request_id})
        if "image" in document:
            try:
                request.image()
            except Exception:
                message = "The body is not a decodable image."
                return Reply(400, {"error": {"code": "invalid_image", "message": message}, "request_id": request_id})
        return Reply(
            200,
            {
                "predictions": [
                    {"breed": breed, "probability": probability, "class_id": class_id}
                    for breed, probability, class_id in FAKE_BREEDS[:top_k]
                ],
                "is_dog": self.is_dog,
                "dog_probability": self.dog_probability,
                "model": FAKE_MODEL,
                "request_id": request_id,
            },
        )


def make_image(
    path: Path | None = None,
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    color: Any = (200, 120, 40),
    format: str = "JPEG",
    orientation: int | None = None,
) -> bytes:
    """A generated image's encoded bytes, also written to ``path`` if given."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    image.save(buffer, format=format, **kwargs)
    data = buffer.getvalue()
    if path is not None:
        path.write_bytes(data)
    return data
