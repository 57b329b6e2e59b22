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
