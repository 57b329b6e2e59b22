"""``dogbreed serve``: the SageMaker container contract, locally; the server is ``dogbreed.server``'s."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from ..choices import MAX_BODY_BYTES


@click.command(name="serve")
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="Artifact to serve: model.tar.gz, or the folder `dogbreed package` wrote. Required.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to bind (0: any free port).")
@click.option("--max-batch-size", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Most images one forward pass gathers from concurrent requests.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 1000),
              help="How long a batch waits for requests that are still being decoded (never when none are).")
@click.option("--threads", default=None, type=click.IntRange(1, 256),
              help="Intra-op threads of the model runtime. Default: one per usable CPU.")
@click.option("--decode-threads", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Threads decoding and preprocessing images.")
@click.option("--request-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds before a request is answered 504 request_timeout.")
@click.option("--max-body-bytes", default=MAX_BODY_BYTES, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted (SageMaker's limit is 6 MiB).")
@click.option("--runtime", type=click.Choice(["eager", "onnx"]), default=None,
              help="Serve an optimised artifact with eager PyTorch, or an onnx-int8 one with its fp32 graph, "
              "instead. Default: the artifact's runtime (onnx-int8 after its self-check on this CPU).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log level of the JSON logs on stderr.")
def command(model_path, host, port, max_batch_size, max_wait_ms, threads, decode_threads, request_timeout,
                  max_body_bytes, runtime, log_level):
    """Serve a model artifact over HTTP like a SageMaker endpoint (GET /ping, POST /invocations,
    POST /endpoints/NAME/invocations). Logs are JSON lines on stderr; stop with Ctrl-C or SIGTERM."""
    from ..server import ServerConfig, configure_logging, create_server

    if not model_path.exists():
        raise click.ClickException(f"--model {model_path}: no such file or directory")
    # OpenMP threads (eager PyTorch) sleep instead of spinning between forward passes: the decode
    # threads need those cores, and on a busy 2-core machine spinning made eager ResNet50 up to 8x
    # slower. Takes effect because torch is first imported later, by the loader thread.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    configure_logging(log_level)
    config = ServerConfig(
        model_path=str(model_path),
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        threads=threads,
        decode_threads=decode_threads,
        request_timeout=request_timeout,
        max_body_bytes=max_body_bytes,
        runtime=runtime,
    )
    server, model_server = create_server(config, host, port, log_level)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler that
    # was installed before it: a no-op here, so a graceful stop exits with status 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda signum, frame: None)
    server.run()
    if model_server.load_error is not None:
        raise click.ClickException(f"could not load the model: {model_server.load_error}")
