"""The server of ``dogbreed serve`` (``commands/serve.py``): the SageMaker container contract, locally,
running the artifact's own handlers.

Routes
- ``GET /ping``: 200 once the model is loaded, 503 before (loading happens after the port is bound).
- ``POST /invocations``: the container contract; the body and content type go to the handlers.
- ``POST /endpoints/{name}/invocations``: the SageMaker *runtime* API, so an unmodified
  ``boto3.client("sagemaker-runtime", endpoint_url=...)`` gets a real ``invoke_endpoint`` response;
  model errors come back as the runtime's ``ModelError`` (HTTP 424 with ``OriginalStatusCode`` and
  ``OriginalMessage``), which botocore raises as ``client.exceptions.ModelError``.

Concurrent requests are decoded in worker threads and *micro-batched*: the single inference thread
takes every request that is waiting when it becomes free (and, while other requests are still being
decoded, waits up to ``--max-wait-ms`` for them), so one idle client pays no batching delay and
throughput grows with load. Each request has a timeout; every response, error or not, is one JSON
access-log line on stderr; SIGTERM stops accepting, finishes in-flight requests, then exits.

Heavy imports (torch, onnxruntime) happen in the loader thread after the port is bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .serving import decoding
from .serving.errors import ERROR_CODES, ServingError, error_body

logger = logging.getLogger("dogbreed.server")
access_logger = logging.getLogger("dogbreed.access")

JSON = "application/json"
PRODUCTION_VARIANT = "AllTraffic"  # SageMaker's default variant name
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
MODEL_ERROR_TYPE = "ModelError:http://internal.amazon.com/coral/com.amazonaws.sagemaker/"


@dataclass
class ServerConfig:
    model_path: str
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    threads: int | None = None  # intra-op threads of the runtime; None = one per usable CPU
    decode_threads: int = 2
    request_timeout: float = 30.0
    max_body_bytes: int = decoding.MAX_BODY_BYTES
    max_queue: int = 256
    runtime: str | None = None  # force "eager"; None = the artifact's runtime


@dataclass
class _Job:
    request: object  # decoding.DecodedRequest
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class ClientGone(Exception):
    """The caller closed its connection: its work is dropped, nobody would read the answer."""


async def _client_disconnected(request) -> None:
    """Returns once the client has closed the connection (called after the body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _unless_client_gone(awaitable, gone: asyncio.Future):
    """``await awaitable``, cancelled (so a queued job is skipped, a queued decode never starts) when the
    client disconnects first: a backlog of abandoned requests must not delay the live ones."""
    work = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    if work in done:
        return work.result()
    work.cancel()
    raise ClientGone


class MicroBatcher:
    """Gathers decoded requests into batches for one inference thread."""

    def __init__(self, model, max_batch_size: int, max_wait_s: float, max_queue: int):
        self.model = model
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_queue = max_queue
        self.decoding = 0  # requests accepted and still being decoded: worth waiting for
        # Forward passes (or direct requests) handed to the inference thread and not finished there: counted
        # down by the thread itself, so a call whose caller gave up still counts while it runs.
        self.running = 0
        self._holding = False  # the batching loop has taken jobs off the queue and not yet handed them over
        self.batches = 0
        self.images = 0
        self.dropped = 0  # jobs skipped because their caller left or their deadline passed
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._task: asyncio.Task | None = None
        self._thread_free: asyncio.Event | None = None

    def start(self) -> None:
        self._thread_free = asyncio.Event()
        self._thread_free.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _submit(self, function, *args) -> asyncio.Future:
        """Run ``function`` in the inference thread. Cancelling the returned future drops it if it has not
        started; the thread's own completion (not the caller's) marks the thread free again."""
        loop = asyncio.get_running_loop()
        self.running += 1
        self._thread_free.clear()
        done = self._executor.submit(function, *args)
        done.add_done_callback(lambda _: _call_soon(loop, self._thread_done))
        return asyncio.wrap_future(done, loop=loop)

    def _thread_done(self) -> None:
        self.running -= 1
        if self.running == 0:
            self._thread_free.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    def idle(self) -> bool:
        """Nothing queued, decoding or running: a new request can skip the queue."""
        return self.running == 0 and self.decoding == 0 and self._queue.empty() and not self._holding

    async def run_direct(self, function, *args):
        """Run ``function`` (decode and predict one request) in the inference thread itself: when the
        server is idle this saves two thread hand-offs, which on a busy machine cost milliseconds."""
        return await self._submit(function, *args)

    async def predict(self, request):
        if self._queue.qsize() >= self.max_queue:
            raise ServingError("server_busy", "The server is overloaded; retry shortly.")
        job = _Job(request, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _gather(self, first: _Job) -> list[_Job]:
        loop = asyncio.get_running_loop()
        jobs = [first]
        size = len(first.request.batch)
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if self.decoding == 0 or remaining <= 0:
                    break  # nobody else is on the way: run now
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            size += len(job.request.batch)
        live = [job for job in jobs if not job.future.done()]  # cancelled: timed out, or the client left
        self.dropped += len(jobs) - len(live)
        return live

    async def _run(self) -> None:
        from .serving.handlers import predict_many

        while True:
            first = await self._queue.get()
            self._holding = True
            try:
                # Choose the batch only once the thread is free: jobs whose caller left or whose deadline
                # passed while it was busy (a stall) are then dropped instead of run.
                await self._thread_free.wait()
                jobs = await self._gather(first)
                if not jobs:
                    continue
                work = self._submit(predict_many, self.model, [job.request for job in jobs])
            finally:
                self._holding = False
            try:
                predictions = await work
            except Exception as exc:  # noqa: BLE001 - ServingError, or a bug: fail these requests, keep serving
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.batches += 1
            self.images += sum(len(job.request.batch) for job in jobs)
            for job, prediction in zip(jobs, predictions, strict=False):
                if not job.future.done():
                    job.future.set_result(prediction)


def _call_soon(loop: asyncio.AbstractEventLoop, callback) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: the server is shutting down
        pass


class ModelServer:
    """The ASGI application and its state: the model (once loaded), the batcher, the thread pools."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.model = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.batcher: MicroBatcher | None = None
        self.decode_pool = ThreadPoolExecutor(max(1, config.decode_threads), thread_name_prefix="decode")
        self.on_load_failure = None  # called (from the loader thread) when the model cannot load
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = self._build_app()

    # --- lifecycle ---

    def _build_app(self):
        from contextlib import asynccontextmanager

        from starlette.applications import Starlette
        from starlette.routing import Route

        @asynccontextmanager
        async def lifespan(app):
            self._loop = asyncio.get_running_loop()
            threading.Thread(target=self._load, name="model-loader", daemon=True).start()
            try:
                yield
            finally:
                if self.batcher is not None:
                    await self.batcher.stop()
                self.decode_pool.shutdown(wait=False, cancel_futures=True)

        routes = [
            Route("/ping", self.ping, methods=["GET"]),
            Route("/invocations", self.invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", self.runtime_invocations, methods=["POST"]),
        ]
        app = Starlette(routes=routes, lifespan=lifespan)
        app.add_exception_handler(404, self._http_error)
        app.add_exception_handler(405, self._http_error)
        app.add_exception_handler(Exception, self._unexpected_error)
        return AccessLog(app)

    def _load(self) -> None:
        from .serving.handlers import load

        started = time.perf_counter()
        try:
            model = load(self.config.model_path, runtime=self.config.runtime, threads=self.config.threads)
            model.warm_up()
        except Exception as exc:  # noqa: BLE001 - ArtifactError, RuntimeLoadError, or worse
            self.load_error = " ".join(str(exc).split()) or type(exc).__name__
            logger.error("could not load the model: %s", self.load_error)
            if self.on_load_failure is not None:
                self.on_load_failure()
            return
        self.model = model
        future = asyncio.run_coroutine_threadsafe(self._start_batcher(model), self._loop)
        future.result()
        self.loaded.set()
        logger.info(
            "model %s version %s loaded with runtime %s in %.2f s; ready %.2f s after process start",
            model.info["name"], model.info["version"], model.runtime_name,
            time.perf_counter() - started, seconds_since_process_start(),
        )

    async def _start_batcher(self, model) -> None:
        self.batcher = MicroBatcher(
            model, self.config.max_batch_size, self.config.max_wait_ms / 1000, self.config.max_queue
        )
        self.batcher.start()

    # --- routes ---

    async def ping(self, request):
        from starlette.responses import JSONResponse

        if not self.loaded.is_set():
            detail = "The model is still loading." if self.load_error is None else "The model failed to load."
            return JSONResponse(error_body("model_not_loaded", detail), status_code=503)
        body = {"status": "ok", "model": self.model.info, "runtime": self.model.runtime_name}
        if self.model.self_check is not None:  # onnx-int8: its agreement on this CPU, and what it chose
            body["self_check"] = self.model.self_check
        return JSONResponse(body, status_code=200)

    async def invocations(self, request):
        status, body = await self._invoke(request)
        return _json_response(status, body)

    async def runtime_invocations(self, request):
        """The SageMaker runtime's InvokeEndpoint: same model, the runtime's envelope and errors."""
        from starlette.responses import Response

        name = request.path_params["name"]
        request.state.endpoint = name
        request_id = str(uuid.uuid4())
        status, body = await self._invoke(request)
        if status == 200:
            return Response(
                body,
                status_code=200,
                media_type=JSON,
                headers={"x-Amzn-Invoked-Production-Variant": PRODUCTION_VARIANT, "x-amzn-RequestId": request_id},
            )
        kind = "client" if status < 500 else "server"
        original = body.decode("utf-8")
        envelope = {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "Message": f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See the `dogbreed serve` log of endpoint {name} for more information.",
            "OriginalMessage": original,
            "OriginalStatusCode": status,
        }
        return Response(
            json.dumps(envelope),
            status_code=424,
            media_type=JSON,
            headers={"x-amzn-ErrorType": MODEL_ERROR_TYPE, "x-amzn-RequestId": request_id},
        )

    async def _invoke(self, request) -> tuple[int, bytes]:
        """Run one request through the handlers; (status, JSON body), never an exception."""
        try:
            result = await asyncio.wait_for(self._predict(request), self.config.request_timeout)
            return 200, result
        except ServingError as exc:
            request.state.error_code = exc.code
            return exc.status, _dumps(exc.to_dict())
        except ClientGone:
            # Nobody reads this answer; the status is for the access log (nginx's "client closed request").
            request.state.error_code = "client_disconnected"
            return 499, _dumps(error_body("request_timeout", "The client closed the connection."))
        except TimeoutError:
            request.state.error_code = "request_timeout"
            detail = f"The request took longer than {self.config.request_timeout:g} s."
            return ERROR_CODES["request_timeout"], _dumps(error_body("request_timeout", detail))
        except Exception:
            logger.exception("unexpected error while handling a request")
            request.state.error_code = "internal_error"
            return 500, _dumps(error_body("internal_error", "The server failed to handle this request."))

    async def _predict(self, request) -> bytes:
        from .serving.handlers import check_accept

        if not self.loaded.is_set():
            raise ServingError("model_not_loaded", "The model is still loading; retry when /ping answers 200.")
        check_accept(request.headers.get("accept"))
        body = await _read_body(request, self.config.max_body_bytes)
        content_type, attributes = request.headers.get("content-type"), request.headers.get(CUSTOM_ATTRIBUTES)
        gone = asyncio.ensure_future(_client_disconnected(request))
        try:
            return await self._predict_body(request, body, content_type, attributes, gone)
        finally:
            gone.cancel()

    async def _predict_body(self, request, body: bytes, content_type, attributes, gone) -> bytes:
        from .serving.handlers import decode_request, render

        if self.batcher.idle():
            prediction = await _unless_client_gone(
                self.batcher.run_direct(_decode_and_predict, self.model, body, content_type, attributes), gone
            )
            request.state.images = len(prediction.breed_probs)
            return _dumps(render(prediction))
        loop = asyncio.get_running_loop()
        self.batcher.decoding += 1
        try:
            decoded = await _unless_client_gone(
                loop.run_in_executor(self.decode_pool, decode_request, self.model, body, content_type, attributes),
                gone,
            )
        finally:
            self.batcher.decoding -= 1
        request.state.images = len(decoded.batch)
        prediction = await _unless_client_gone(self.batcher.predict(decoded), gone)
        return _dumps(render(prediction))

    async def _http_error(self, request, exc):
        code = "not_found" if exc.status_code == 404 else "method_not_allowed"
        request.state.error_code = code
        detail = f"No route {request.method} {request.url.path}." if code == "not_found" else (
            f"{request.method} is not allowed on {request.url.path}."
        )
        return _json_response(exc.status_code, _dumps(error_body(code, detail)))

    async def _unexpected_error(self, request, exc):
        logger.error("unhandled error", exc_info=exc)
        return _json_response(500, _dumps(error_body("internal_error", "The server failed to handle this request.")))


def _decode_and_predict(model, body: bytes, content_type: str | None, attributes: str | None):
    from .serving.handlers import decode_request, predict_many

    return predict_many(model, [decode_request(model, body, content_type, attributes)])[0]


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServingError("payload_too_large", f"The body is {int(declared)} bytes; the limit is {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServingError("payload_too_large", f"The body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _dumps(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _json_response(status: int, body: bytes):
    from starlette.responses import Response

    return Response(body, status_code=status, media_type=JSON)


class AccessLog:
    """ASGI middleware: one JSON line per HTTP request (status, duration, sizes, error code)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        record = {"status": 500, "bytes_out": 0, "bytes_in": 0}
        scope.setdefault("state", {})

        async def counting_receive():
            message = await receive()
            record["bytes_in"] += len(message.get("body", b""))
            return message

        async def recording_send(message):
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            elif message["type"] == "http.response.body":
                record["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            state = scope.get("state", {})
            line = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "method": scope["method"],
                "path": scope["path"],
                "status": record["status"],
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "bytes_in": record["bytes_in"],
                "bytes_out": record["bytes_out"],
                "client": (scope.get("client") or ["", 0])[0],
            }
            for key in ("endpoint", "images", "error_code"):
                if key in state:
                    line[key] = state[key]
            access_logger.info(json.dumps(line, separators=(",", ":")))


class JsonLogFormatter(logging.Formatter):
    """Access lines are JSON already; other records become {"time", "level", "logger", "message"}."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == access_logger.name:
            return record.getMessage()
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    for name in ("dogbreed", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level.upper())
        log.propagate = False


def seconds_since_process_start() -> float:
    """Wall time since this process started (Linux /proc), else since this module was imported."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


def create_server(config: ServerConfig, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"):
    """A ``uvicorn.Server`` for ``config`` (not started) and its :class:`ModelServer`."""
    import uvicorn

    model_server = ModelServer(config)
    uvicorn_config = uvicorn.Config(
        model_server.app,
        host=host,
        port=port,
        log_config=None,
        log_level=log_level,
        access_log=False,  # AccessLog writes richer JSON lines
        lifespan="on",
        timeout_graceful_shutdown=int(config.request_timeout) + 5,
        timeout_keep_alive=75,  # longer than typical client pools' idle time
    )
    server = uvicorn.Server(uvicorn_config)

    def stop_on_load_failure():
        server.should_exit = True

    model_server.on_load_failure = stop_on_load_failure
    return server, model_server
