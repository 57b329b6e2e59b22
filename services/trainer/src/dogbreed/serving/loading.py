"""Load a model artifact (docs/artifact.md) and turn network outputs into probabilities.

Copied into every artifact as ``code/dogbreed_serving/``: imports torch, torchvision, PIL and numpy
only, never the rest of ``dogbreed``, and never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import math
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .architectures import BACKBONES, build_model
from .transforms import EvalPreset

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.pth"
WEIGHTS_DIGEST_KEY = "weights_sha256"  # metadata.json: the SHA-256 of model.pth, checked before loading it
GRAPH_DIGESTS_KEY = "graph_sha256"  # metadata.json: {file name: SHA-256} of the optimised runtimes' graphs
ONNX_FILE = "model.onnx"
TARBALL_NAME = "model.tar.gz"


class ArtifactError(ValueError):
    """The path is not a usable model artifact; the message says why in one line."""


# --- probabilities ------------------------------------------------------------------------------


def probabilities(
    logits: torch.Tensor, output_indices: Sequence[int] | None = None, dog_indices: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Breed probabilities ``[N, len(classes)]`` and the probability of "a dog" ``[N]`` (or None).

    Implements docs/artifact.md: the breeds' probabilities are the softmax restricted to
    ``output_indices`` and renormalised; the dog probability is the softmax mass on ``dog_indices``.
    Both are computed from log-sum-exps, so an image far from every dog class (a cat) still gets
    finite breed probabilities instead of 0/0.
    """
    logits = logits.float()
    breed_logits = logits if output_indices is None else logits[:, list(output_indices)]
    breed_probs = torch.softmax(breed_logits, dim=1)
    if dog_indices is None:
        return breed_probs, None
    dog_log_mass = torch.logsumexp(logits[:, list(dog_indices)], dim=1) - torch.logsumexp(logits, dim=1)
    return breed_probs, dog_log_mass.exp().clamp_(max=1.0)


# --- metadata -----------------------------------------------------------------------------------


def _require(metadata: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in metadata:
        raise ArtifactError(f"{where}: metadata.json has no {key!r}")
    value = metadata[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ArtifactError(f"{where}: metadata.json {key!r} must be {names}, got {value!r}")
    return value


def _index_list(metadata: dict, key: str, num_outputs: int, where: str) -> list[int] | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise ArtifactError(f"{where}: metadata.json {key!r} must be a list of ints or null")
    if not value or len(set(value)) != len(value) or min(value) < 0 or max(value) >= num_outputs:
        raise ArtifactError(
            f"{where}: metadata.json {key!r} must list distinct outputs in 0..{num_outputs - 1}"
        )
    return value


def validate_metadata(metadata: object, where: str = "artifact") -> dict:
    """Check ``metadata`` against docs/artifact.md; raise :class:`ArtifactError` naming the problem."""
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{where}: metadata.json must hold a JSON object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: unsupported artifact format_version {version!r}; this loader reads {FORMAT_VERSION}"
        )
    backbone = _require(metadata, "backbone", str, where)
    if backbone not in BACKBONES:
        raise ArtifactError(f"{where}: unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    classes = _require(metadata, "classes", list, where)
    if not classes or not all(isinstance(c, str) and c for c in classes):
        raise ArtifactError(f"{where}: metadata.json 'classes' must be a non-empty list of names")
    if len(set(classes)) != len(classes):
        raise ArtifactError(f"{where}: metadata.json 'classes' has duplicate names")
    num_outputs = _require(metadata, "num_outputs", int, where)
    output_indices = _index_list(metadata, "output_indices", num_outputs, where)
    _index_list(metadata, "dog_indices", num_outputs, where)
    expected = len(output_indices) if output_indices is not None else num_outputs
    if len(classes) != expected:
        source = "output_indices" if output_indices is not None else "num_outputs"
        raise ArtifactError(f"{where}: {len(classes)} classes but {source} gives {expected} breed outputs")
    for key in ("image_size", "resize_size"):
        if _require(metadata, key, int, where) <= 0:
            raise ArtifactError(f"{where}: metadata.json {key!r} must be positive")
    if metadata["resize_size"] < metadata["image_size"]:
        raise ArtifactError(f"{where}: resize_size must be at least image_size")
    for key in ("mean", "std"):
        values = _require(metadata, key, list, where)
        if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ArtifactError(f"{where}: metadata.json {key!r} must be 3 numbers")
    if not all(v > 0 for v in metadata["std"]):
        raise ArtifactError(f"{where}: metadata.json 'std' must be positive")
    _require(metadata, "name", str, where)
    _require(metadata, "runtime", str, where)
    return metadata


def preset_from_metadata(metadata: dict) -> EvalPreset:
    return EvalPreset(metadata["image_size"], metadata["resize_size"], metadata["mean"], metadata["std"])


# --- locating and reading an artifact ------------------------------------------------------------


def _extract_tarball(path: Path) -> tempfile.TemporaryDirectory:
    tmp = tempfile.TemporaryDirectory(prefix="dogbreed-model-")
    try:
        with tarfile.open(path, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp.name, filter="data")  # refuses absolute paths, "..", links out, devices
            else:  # Python < 3.11.4 (older serving containers)
                for member in tar.getmembers():
                    if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise tarfile.TarError(f"unsafe member {member.name!r}")
                tar.extractall(tmp.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        tmp.cleanup()
        raise ArtifactError(f"{path}: not a readable model.tar.gz ({exc})") from None
    return tmp


def resolve_artifact(path: str | Path) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The directory holding metadata.json for ``path``, and the temporary directory to keep alive.

    ``path`` may be a ``model.tar.gz``, an extracted artifact (SageMaker's ``/opt/ml/model``), the
    plain directory ``dogbreed package --format dir`` writes, or a directory holding ``model.tar.gz``.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / METADATA_FILE).is_file():
            return path, None
        if (path / TARBALL_NAME).is_file():
            path = path / TARBALL_NAME
        else:
            raise ArtifactError(f"{path}: not a model artifact (no {METADATA_FILE} or {TARBALL_NAME} inside)")
    tmp = _extract_tarball(path)
    root = Path(tmp.name)
    if not (root / METADATA_FILE).is_file():
        tmp.cleanup()
        raise ArtifactError(f"{path}: not a model artifact (no {METADATA_FILE} at the top of the archive)")
    return root, tmp


def read_metadata(model_dir: str | Path) -> dict:
    model_dir = Path(model_dir)
    try:
        metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{model_dir}: unreadable {METADATA_FILE} ({exc})") from None
    return validate_metadata(metadata, str(model_dir))


# --- the loaded model ----------------------------------------------------------------------------


class LoadedModel:
    """A network in eval mode with its metadata and the preprocessing it was evaluated with."""

    def __init__(
        self,
        model: nn.Module,
        metadata: dict,
        model_dir: Path,
        device: torch.device,
        tempdir: tempfile.TemporaryDirectory | None = None,
    ):
        self.model = model
        self.metadata = metadata
        self.preset = preset_from_metadata(metadata)
        self.classes: list[str] = list(metadata["classes"])
        self.output_indices: list[int] | None = metadata.get("output_indices")
        self.dog_indices: list[int] | None = metadata.get("dog_indices")
        # Where the artifact's files are (an extracted temporary copy for a .tar.gz, removed when
        # this object is garbage-collected); optimised runtimes read e.g. model.onnx from here.
        self.model_dir = model_dir
        self.device = device
        self._tempdir = tempdir

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata.get("version", "")

    def probabilities(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return probabilities(logits, self.output_indices, self.dog_indices)

    def predict_proba(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``batch`` ``[N, 3, H, W]`` preprocessed by :attr:`preset` -> (breed_probs, dog_prob)."""
        with torch.inference_mode():
            logits = self.model(batch.to(self.device, torch.float32))
            breed_probs, dog_prob = self.probabilities(logits)
        return breed_probs.cpu(), None if dog_prob is None else dog_prob.cpu()

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.preset(image) for image in images])

    def predict_images(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.predict_proba(self.preprocess(images))


def _strip_wrapper_prefixes(state_dict: dict) -> dict:
    # DistributedDataParallel saves "module.", torch.compile "_orig_mod.".
    for prefix in ("module.", "_orig_mod."):
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights_digest(path: str | Path, weights: Path, metadata: dict) -> None:
    """ArtifactError when model.pth is not the file the artifact was packaged with: torch.load does not notice
    bytes overwritten inside a tensor. Artifacts packaged before the digest was recorded have none to check."""
    expected = metadata.get(WEIGHTS_DIGEST_KEY)
    if expected is not None and file_sha256(weights) != expected:
        raise ArtifactError(
            f"{path}: {WEIGHTS_FILE} is damaged: its sha256 does not match {WEIGHTS_DIGEST_KEY} in metadata.json"
        )


def check_graph_digest(graph: Path, metadata: dict) -> None:
    """ArtifactError when an optimised runtime's graph (model.onnx, model.fp32.onnx) is not the file the
    artifact was packaged with; artifacts packaged before the digests were recorded have none to check."""
    expected = (metadata.get(GRAPH_DIGESTS_KEY) or {}).get(graph.name)
    if expected is not None and file_sha256(graph) != expected:
        raise ArtifactError(f"{graph.name} is damaged: its sha256 does not match {GRAPH_DIGESTS_KEY} in metadata.json")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load an artifact (see :func:`resolve_artifact` for what ``path`` may be). Never downloads."""
    model_dir, tempdir = resolve_artifact(path)
    try:
        metadata = read_metadata(model_dir)
        weights = model_dir / WEIGHTS_FILE
        if not weights.is_file():
            raise ArtifactError(f"{path}: the artifact has no {WEIGHTS_FILE}")
        check_weights_digest(path, weights, metadata)
        device = torch.device(device)
        try:
            state_dict = torch.load(weights, map_location=device, weights_only=True)
        except Exception as exc:  # pickle errors come in many types
            raise ArtifactError(f"{path}: {WEIGHTS_FILE} is not a loadable state dict ({exc})") from None
        if not isinstance(state_dict, dict):
            raise ArtifactError(f"{path}: {WEIGHTS_FILE} must hold a state dict, not {type(state_dict).__name__}")
        model = build_model(metadata["backbone"], metadata["num_outputs"])
        try:
            model.load_state_dict(_strip_wrapper_prefixes(state_dict), strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            raise ArtifactError(
                f"{path}: {WEIGHTS_FILE} does not fit a {metadata['backbone']} with "
                f"{metadata['num_outputs']} outputs ({detail})"
            ) from None
        model.to(device).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    except BaseException:
        if tempdir is not None:
            tempdir.cleanup()
        raise
    return LoadedModel(model, metadata, model_dir, device, tempdir)
