"""The runtimes a loaded artifact can predict with: eager PyTorch (the reference) or ONNX Runtime.

Copied into every artifact (``code/dogbreed_serving/``). ``metadata["runtime"]`` picks one at package
time (see ``dogbreed.optimize``): ``eager`` runs ``model.pth`` in PyTorch; ``onnx`` and ``onnx-int8``
run ``model.onnx`` (fp32, or statically quantised INT8) in ONNX Runtime, which this module imports
only when such an artifact is loaded. An ONNX artifact also keeps ``model.pth``, so it can always be
served eagerly instead (``DOGBREED_RUNTIME=eager``).

Every runtime takes a preprocessed float32 batch ``[N, 3, H, W]`` (numpy) and returns numpy
``(breed_probs [N, len(classes)], dog_prob [N] or None)`` as docs/artifact.md defines them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EAGER = "eager"
ONNX_RUNTIMES = ("onnx", "onnx-int8")
RUNTIMES = (EAGER, *ONNX_RUNTIMES)
ONNX_FILE = "model.onnx"
ONNX_INPUT = "input"
# onnx-int8 artifacts also carry their fp32 graph and a self-check (see check_int8 below).
ONNX_FP32_FILE = "model.fp32.onnx"
SELF_CHECK_FILE = "selfcheck.npz"
# The instruction-set extensions INT8/fp32 kernels dispatch on: what an agreement figure depends on.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm")


class RuntimeLoadError(ValueError):
    """The artifact's runtime cannot be loaded here; the message says why."""


def probabilities(
    logits: np.ndarray, output_indices: Sequence[int] | None, dog_indices: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """numpy twin of ``loading.probabilities`` (tested equal): softmax over the breed outputs, and the
    softmax mass on ``dog_indices``, both through log-sum-exp so far-off images stay finite."""
    logits = logits.astype(np.float32, copy=False)
    breed_logits = logits if output_indices is None else logits[:, list(output_indices)]
    shifted = breed_logits - breed_logits.max(axis=1, keepdims=True)
    breed = np.exp(shifted)
    breed /= breed.sum(axis=1, keepdims=True)
    if dog_indices is None:
        return breed, None
    dog_log_mass = _logsumexp(logits[:, list(dog_indices)]) - _logsumexp(logits)
    return breed, np.minimum(np.exp(dog_log_mass), 1.0).astype(np.float32)


def _logsumexp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def default_threads() -> int:
    """Intra-op threads: ``DOGBREED_THREADS`` or one per CPU this process may use."""
    configured = os.environ.get("DOGBREED_THREADS")
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def cpu_features() -> list[str]:
    """The CPU_FEATURES this machine has (from /proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [name for name in CPU_FEATURES if name in flags]


def check_inputs(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """The self-check's uint8 crops ``[N, 3, H, W]`` -> the network input, with the very arithmetic of
    ``decoding.preprocess`` (float32 multiply, then subtract), so it is bit-identical to serving's."""
    scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float64))).astype(np.float32)
    offset = (np.asarray(mean, dtype=np.float64) / np.asarray(std, dtype=np.float64)).astype(np.float32)
    out = pixels.astype(np.float32) * scale[None, :, None, None]
    out -= offset[None, :, None, None]
    return out


def check_int8(runtime, model_dir: Path, metadata: dict) -> dict:
    """Top-1 agreement of ``runtime`` with the fp32 reference outputs stored at package time, measured
    on this CPU: INT8 kernels differ between instruction sets (u8 x s8 saturates without VNNI), so the
    packaging machine's figure does not carry over. Returns the check's record; ``passed`` False when
    the file is missing or unreadable, or agreement is below the artifact's threshold."""
    info = (metadata.get("runtime_info") or {}).get("self_check") or {}
    threshold = float(info.get("threshold", 1.0))
    record = {"threshold": threshold, "cpu_features": cpu_features(), "images": 0, "top1_agreement": None}
    try:
        with np.load(model_dir / SELF_CHECK_FILE, allow_pickle=False) as data:
            pixels, reference = data["pixels"], data["reference_probs"]
        size = int(metadata["image_size"])
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != (3, size, size) or not len(pixels):
            raise ValueError(f"pixels must be uint8 [N, 3, {size}, {size}], got {pixels.dtype} {pixels.shape}")
        if reference.ndim != 2 or len(reference) != len(pixels):
            raise ValueError(f"reference_probs must be [{len(pixels)}, classes], got {reference.shape}")
        batch = check_inputs(pixels, metadata["mean"], metadata["std"])
        got = np.concatenate([runtime.predict_proba(batch[i : i + 16])[0] for i in range(0, len(batch), 16)])
        if got.shape != reference.shape:
            raise ValueError(f"reference_probs has shape {reference.shape}, the model answers {got.shape}")
    except (OSError, KeyError, ValueError) as exc:
        record.update(passed=False, reason=f"{SELF_CHECK_FILE} unusable: {' '.join(str(exc).split())[:200]}")
        return record
    agree = float((got.argmax(1) == reference.argmax(1)).mean())
    record.update(images=len(batch), top1_agreement=round(agree, 4),
                  max_abs_prob_diff=round(float(np.abs(got - reference).max()), 4), passed=agree >= threshold)
    if not record["passed"]:
        record["reason"] = f"top-1 agreement {agree:.1%} is below the artifact's threshold {threshold:.1%}"
    return record


class EagerRuntime:
    """``model.pth`` in PyTorch fp32 through ``LoadedModel.predict_proba``: the reference."""

    name = EAGER

    def __init__(self, loaded, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.loaded = loaded

    def predict_proba(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        breed, dog = self.loaded.predict_proba(torch.from_numpy(np.ascontiguousarray(batch)))
        return breed.numpy(), None if dog is None else dog.numpy()


class OnnxRuntime:
    """``model.onnx`` in ONNX Runtime's CPU provider (fp32 or INT8, whichever the file holds)."""

    def __init__(self, model_path: str | Path, metadata: dict, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeLoadError(
                f"runtime {metadata.get('runtime')!r} needs the onnxruntime package "
                "(the artifact's code/requirements.txt lists it); or set DOGBREED_RUNTIME=eager"
            ) from None
        model_path = Path(model_path)
        if not model_path.is_file():
            raise RuntimeLoadError(f"runtime {metadata.get('runtime')!r} needs {model_path.name}, which is missing")
        from .loading import check_graph_digest  # here, not at the top: the eager path imports this module first

        check_graph_digest(model_path, metadata)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: image decoding shares these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.name = metadata.get("runtime", "onnx")
        self.output_indices = metadata.get("output_indices")
        self.dog_indices = metadata.get("dog_indices")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def predict_proba(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return probabilities(self.logits(batch), self.output_indices, self.dog_indices)
