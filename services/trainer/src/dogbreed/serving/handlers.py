"""SageMaker inference handlers: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

The artifact's ``code/inference.py`` re-exports these four names; ``dogbreed serve`` runs the very same
functions (through :func:`load`, :func:`decode_request`, :func:`predict_many` and :func:`render`,
which also micro-batch several requests into one forward pass).

Copied into every artifact as ``code/dogbreed_serving/``: relative imports only; imports PIL and numpy
at module level, torch only for the eager runtime and onnxruntime only for the ONNX runtimes.

Errors are :class:`.errors.ServingError` (a stable code, its 4xx/5xx status, a one-line message);
inside SageMaker's container they derive from the inference toolkit's error class so the status
survives (see errors.py).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import decoding
from .decoding import DecodedRequest
from .errors import ServingError
from .runtimes import (
    EAGER,
    ONNX_FILE,
    ONNX_FP32_FILE,
    ONNX_RUNTIMES,
    EagerRuntime,
    OnnxRuntime,
    RuntimeLoadError,
    check_int8,
)

logger = logging.getLogger(__name__)

JSON = "application/json"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


class ServingModel:
    """A loaded artifact ready to serve: its metadata, preprocessing and runtime."""

    def __init__(self, metadata: dict, runtime, model_dir: Path, tempdir: tempfile.TemporaryDirectory | None = None):
        self.metadata = metadata
        self.runtime = runtime
        self.model_dir = model_dir
        self._tempdir = tempdir  # keeps an extracted model.tar.gz alive as long as the model
        self.classes: list[str] = list(metadata["classes"])
        self.crop_size = int(metadata["image_size"])
        self.resize_size = int(metadata["resize_size"])
        self.mean = [float(v) for v in metadata["mean"]]
        self.std = [float(v) for v in metadata["std"]]
        self.info = {"name": metadata["name"], "version": metadata.get("version", "")}
        # onnx-int8 artifacts: the agreement measured on this CPU at load time, and what it chose.
        self.self_check: dict | None = None

    @property
    def runtime_name(self) -> str:
        return self.runtime.name

    def preprocess_bytes(self, data: bytes, where: str = "The body") -> np.ndarray:
        image = decoding.decode_image(data, draft_size=self.resize_size, where=where)
        return decoding.preprocess(image, self.crop_size, self.resize_size, self.mean, self.std)

    def warm_up(self) -> None:
        """One forward pass, so the first request does not pay for lazy initialisation."""
        self.runtime.predict_proba(np.zeros((1, 3, self.crop_size, self.crop_size), np.float32))


@dataclass
class Prediction:
    """What ``predict_fn`` hands ``output_fn``."""

    breed_probs: np.ndarray  # [N, len(classes)]
    dog_probs: np.ndarray | None  # [N] or None when the model cannot tell
    top_k: int
    is_batch: bool
    classes: list[str]
    model_info: dict


def load(path: str | os.PathLike, runtime: str | None = None, threads: int | None = None) -> ServingModel:
    """Load an artifact (``model.tar.gz``, its extracted directory or ``dogbreed package``'s directory).

    ``runtime`` (or the ``DOGBREED_RUNTIME`` environment variable) may force ``eager`` on an
    optimised artifact; by default the runtime chosen at package time is used. Never downloads.
    """
    from .loading import read_metadata, resolve_artifact

    model_dir, tempdir = resolve_artifact(path)
    try:
        metadata = read_metadata(model_dir)
        chosen = runtime or os.environ.get("DOGBREED_RUNTIME") or metadata["runtime"]
        self_check = None
        if chosen == EAGER:
            engine = _eager(model_dir, threads)
        elif chosen == "onnx" and metadata["runtime"] == "onnx-int8" and (model_dir / ONNX_FP32_FILE).is_file():
            engine = OnnxRuntime(model_dir / ONNX_FP32_FILE, {**metadata, "runtime": "onnx"}, threads)
        elif chosen in ONNX_RUNTIMES and chosen == metadata["runtime"]:
            engine = OnnxRuntime(model_dir / ONNX_FILE, metadata, threads)
            if chosen == "onnx-int8":
                engine, self_check = _checked_int8(engine, model_dir, metadata, threads)
        else:
            raise RuntimeLoadError(
                f"cannot serve this artifact with runtime {chosen!r}: it was packaged for "
                f"{metadata['runtime']!r} (which, or 'eager', can be used)"
            )
    except BaseException:
        if tempdir is not None:
            tempdir.cleanup()
        raise
    model = ServingModel(metadata, engine, model_dir, tempdir)
    model.self_check = self_check
    logger.info("loaded %s version %s with runtime %s", model.info["name"], model.info["version"], engine.name)
    return model


def _eager(model_dir: Path, threads: int | None) -> EagerRuntime:
    from .loading import load_model

    return EagerRuntime(load_model(model_dir), threads)


def _checked_int8(engine: OnnxRuntime, model_dir: Path, metadata: dict, threads: int | None):
    """The INT8 runtime if it agrees with fp32 on this CPU as well as the artifact demands, else the
    artifact's fp32 graph (eager for an artifact without one): never answers below the threshold."""
    if not (metadata.get("runtime_info") or {}).get("self_check"):
        logger.warning("this onnx-int8 artifact has no self-check (packaged before it existed): its "
                       "agreement with fp32 on this CPU is unknown; repackage it")
        return engine, None
    record = check_int8(engine, model_dir, metadata)
    features = " ".join(record["cpu_features"]) or "unknown"
    if record["passed"]:
        record["serving"] = "onnx-int8"
        logger.info("INT8 self-check passed on this CPU (%s): top-1 agreement with fp32 %.1f%% on %d images "
                    "(threshold %.1f%%); serving onnx-int8", features, 100 * record["top1_agreement"],
                    record["images"], 100 * record["threshold"])
        return engine, record
    if (model_dir / ONNX_FP32_FILE).is_file():
        fallback = OnnxRuntime(model_dir / ONNX_FP32_FILE, {**metadata, "runtime": "onnx"}, threads)
    else:
        fallback = _eager(model_dir, threads)
    record["serving"] = fallback.name
    logger.warning("INT8 self-check failed on this CPU (%s): %s; serving the fp32 graph (%s) instead",
                   features, record["reason"], fallback.name)
    return fallback, record


# --- the serving pipeline, shared by the SageMaker handlers and `dogbreed serve` ---------------------


def decode_request(
    model: ServingModel, body: bytes | str, content_type: str | None, custom_attributes: str | None = None
) -> DecodedRequest:
    """A request -> the network input; raises :class:`ServingError` (4xx) for anything malformed."""
    encoded, top_k, is_batch = decoding.split_request(body, content_type, custom_attributes)
    arrays = [model.preprocess_bytes(data, where=label) for label, data in encoded]
    return DecodedRequest(np.stack(arrays), top_k, is_batch)


def predict_many(model: ServingModel, requests: list[DecodedRequest]) -> list[Prediction]:
    """One forward pass for several requests (micro-batching); one :class:`Prediction` per request."""
    batch = requests[0].batch if len(requests) == 1 else np.concatenate([r.batch for r in requests])
    try:
        breed, dog = model.runtime.predict_proba(batch)
    except ServingError:
        raise
    except Exception:
        logger.exception("inference failed for a batch of %d", len(batch))
        raise ServingError("internal_error", "The model failed to run on this input.") from None
    predictions, start = [], 0
    for request in requests:
        stop = start + len(request.batch)
        predictions.append(
            Prediction(
                breed[start:stop],
                None if dog is None else dog[start:stop],
                request.top_k,
                request.is_batch,
                model.classes,
                model.info,
            )
        )
        start = stop
    return predictions


def result_objects(prediction: Prediction) -> list[dict]:
    """One contract object per image: top-k breeds, is_dog and dog_probability."""
    k = min(prediction.top_k, len(prediction.classes))
    results = []
    for i, probs in enumerate(prediction.breed_probs):
        order = np.argsort(-probs, kind="stable")[:k]
        dog = None if prediction.dog_probs is None else float(prediction.dog_probs[i])
        results.append(
            {
                "predictions": [
                    {"breed": prediction.classes[c], "probability": round(float(probs[c]), 6), "class_id": int(c)}
                    for c in order
                ],
                "is_dog": None if dog is None else dog >= 0.5,
                "dog_probability": None if dog is None else round(dog, 6),
            }
        )
    return results


def render(prediction: Prediction) -> dict:
    results = result_objects(prediction)
    if prediction.is_batch:
        return {"results": results, "model": dict(prediction.model_info)}
    return {**results[0], "model": dict(prediction.model_info)}


def check_accept(accept: str | None) -> None:
    """JSON is the only response type; ``*/*``, ``application/*`` or nothing mean JSON too."""
    if not accept:
        return
    for media_range in accept.split(","):
        if decoding.media_type(media_range) in (JSON, "application/*", "*/*"):
            return
    raise ServingError("not_acceptable", f"Accept {accept!r} cannot be served; responses are {JSON}.")


# --- the SageMaker inference handler contract --------------------------------------------------------
# Signatures matter: the toolkit passes a `context` to any function with one more parameter than it
# needs, so model_fn/input_fn take an optional context and nothing else.

_serving_model: ServingModel | None = None  # set by model_fn; input_fn needs the preprocessing


def model_fn(model_dir, context=None) -> ServingModel:
    """Load the artifact from ``model_dir`` (SageMaker's /opt/ml/model, or any artifact path)."""
    global _serving_model
    _serving_model = load(model_dir)
    _serving_model.warm_up()
    return _serving_model


def input_fn(request_body, request_content_type, context=None) -> DecodedRequest:
    if _serving_model is None:
        raise ServingError("model_not_loaded", "The model is not loaded yet.")
    return decode_request(_serving_model, request_body, request_content_type, _custom_attributes(context))


def predict_fn(input_data: DecodedRequest, model: ServingModel) -> Prediction:
    return predict_many(model, [input_data])[0]


def output_fn(prediction: Prediction, accept=JSON) -> tuple[str, str]:
    check_accept(accept)
    return json.dumps(render(prediction), separators=(",", ":")), JSON


def _custom_attributes(context) -> str | None:
    """The CustomAttributes header of the current request from the model server's context."""
    if context is None:
        return None
    try:
        properties = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return None
    for key, value in (properties or {}).items():
        if str(key).lower() == CUSTOM_ATTRIBUTES_HEADER.lower():
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
