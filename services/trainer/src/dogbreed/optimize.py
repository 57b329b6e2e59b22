"""Package-time optimisation: export the network to ONNX and, optionally, quantise it to INT8.

``build_runtime`` is called by ``dogbreed package --runtime onnx|onnx-int8`` (artifact.write_artifact)
with the artifact's staging folder; it writes ``model.onnx`` there, checks it against the eager
network and returns the metadata to record. ``model.pth`` stays in the artifact as the reference.

Runtimes (ResNet50, 224 px, batch 1, this project's 2-core CPU; bench/results/serving.md has the
current figures; agreement is top-1 with eager fp32 for the EfficientNet-Lite0 starter on 680 real
photos):

- ``onnx``: fp32 graph in ONNX Runtime (fused conv+bn, its own kernels), ~1.5-2x eager. Exact enough
  (100% top-1 agreement): the recommended runtime for production CPU serving.
- ``onnx-int8``: approximate, opt-in. Static INT8 quantisation, QDQ format, per-channel symmetric
  INT8 weights and asymmetric UINT8 activations calibrated on representative photos: ~5-8x eager on
  CPUs with AVX512-VNNI/AVX-VNNI, but only ~95% top-1 agreement on Lite0. The error is spread over
  every block's linear-bottleneck (project) conv, whose outliers per-tensor 8-bit activations cannot
  hold; no calibration method or mixed-precision variant reached 99% while staying faster than
  ``onnx`` (best 98.5% at 4.3 ms vs 3.1 ms for Lite0 in ``onnx``); that would need
  quantisation-aware training or AdaRound.

Given photos (required by ``onnx-int8``), the check below measures top-1 agreement on photos held
out from calibration, records it as ``runtime_info.check`` in the metadata and refuses the runtime
below ``min_agreement`` (default ``MIN_CHECK_AGREEMENT``, 0.90: below that the graph is broken, not
merely approximate).
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .serving import decoding
from .serving.errors import ServingError
from .serving.runtimes import (
    EAGER,
    ONNX_FILE,
    ONNX_FP32_FILE,
    ONNX_INPUT,
    ONNX_RUNTIMES,
    SELF_CHECK_FILE,
    OnnxRuntime,
    cpu_features,
    probabilities,
)

logger = logging.getLogger(__name__)

OPSET = 18
MAX_CALIBRATION_IMAGES = 64  # ranges settle long before this; more only slows packaging
MAX_CHECK_IMAGES = 128
# Check images an onnx-int8 artifact carries to re-measure its agreement where it is loaded: 150 KB
# each at 224 px (uint8 crops), and a fraction of a second of INT8 inference at load time.
SELF_CHECK_IMAGES = 64
# Below this the graph is broken, not merely approximate (EfficientNet-Lite0 INT8 measures ~95-96%).
MIN_CHECK_AGREEMENT = 0.90
ONNX_FP32_TOLERANCE = 1e-3  # max |logit difference| between eager and ONNX Runtime fp32


class OptimizeError(ValueError):
    """The runtime cannot be built from these inputs; the message says why."""


def build_runtime(
    model: nn.Module,
    metadata: dict,
    output_dir: str | Path,
    runtime: str,
    calibration_images: Sequence[Path] = (),
    *,
    min_agreement: float = MIN_CHECK_AGREEMENT,
    recipe: str | None = None,
    target_features: Sequence[str] | None = None,
) -> dict:
    """Write ``runtime``'s files into ``output_dir`` and return the metadata updates.

    ``calibration_images`` (needed by ``onnx-int8``): a seeded sample of up to 64 calibrates the
    activation ranges; up to 128 *other* ones measure top-1 agreement with the eager network,
    recorded as ``runtime_info.check``; below ``min_agreement`` the runtime is refused.
    ``recipe`` (onnx-int8): one of RECIPES; default ``recipe_for(target_features)``, the serving
    CPU's flags (default: this machine's).
    """
    if runtime == EAGER:
        return {"runtime": EAGER}
    if runtime not in ONNX_RUNTIMES:
        raise OptimizeError(f"unknown runtime {runtime!r}; choose one of: {EAGER}, {', '.join(ONNX_RUNTIMES)}")
    output_dir = Path(output_dir)
    model = model.eval().float().cpu()
    calibration, check = split_images(list(calibration_images or []), quantised=runtime == "onnx-int8")
    check_batch = load_batch(check, metadata)
    calibration_batch = load_batch(calibration, metadata)
    if runtime == "onnx-int8" and not len(calibration_batch):
        raise OptimizeError("onnx-int8 needs calibration photos: none of the given images could be read")
    if runtime == "onnx-int8" and not len(check_batch):
        raise OptimizeError("onnx-int8 needs at least 2 readable photos: some calibrate, the others make its self-check")
    with tempfile.TemporaryDirectory(prefix="dogbreed-onnx-") as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        export_onnx(model, int(metadata["image_size"]), fp32_path)
        verify_export(model, fp32_path, int(metadata["image_size"]), metadata)
        info: dict = {"opset": OPSET, "onnxruntime": _ort_version()}
        if runtime == "onnx":
            fp32_path.replace(output_dir / ONNX_FILE)
        else:
            features = list(target_features) if target_features is not None else cpu_features()
            chosen = recipe or recipe_for(features)
            info["quantization"] = quantize_int8(fp32_path, output_dir / ONNX_FILE, calibration_batch, chosen)
            info["quantization"]["target_cpu_features"] = features
            # The fallback where the INT8 graph fails its self-check on the serving CPU.
            fp32_path.replace(output_dir / ONNX_FP32_FILE)
    if len(check_batch):
        info["check"] = agreement(model, output_dir / ONNX_FILE, metadata, check_batch)
        check = info["check"]
        check["cpu_features"] = cpu_features()  # INT8 agreement depends on the instruction set
        log = logger.info if check["top1_agreement"] >= 0.99 else logger.warning
        log("%s agrees with eager fp32 on top-1 for %.1f%% of %d held-out photos", runtime,
            100 * check["top1_agreement"], check["images"])
        if info["check"]["top1_agreement"] < min_agreement:
            raise OptimizeError(
                f"{runtime} agrees with the eager model on only {info['check']['top1_agreement']:.1%} of "
                f"{info['check']['images']} held-out photos; refusing to package it"
            )
        if runtime == "onnx-int8":
            info["self_check"] = write_self_check(model, metadata, output_dir, check_batch, min_agreement)
    return {"runtime": runtime, "runtime_info": info}


# --- steps --------------------------------------------------------------------------------------


def split_images(images: list[Path], quantised: bool) -> tuple[list[Path], list[Path]]:
    """Calibration images and *other* images to check agreement on (a seeded shuffle)."""
    images = sorted(Path(p) for p in images)
    random.Random(0).shuffle(images)
    if not quantised:
        return [], images[:MAX_CHECK_IMAGES]
    if len(images) < 2:
        return images, []
    n_calibration = min(MAX_CALIBRATION_IMAGES, max(1, len(images) // 2))
    return images[:n_calibration], images[n_calibration : n_calibration + MAX_CHECK_IMAGES]


def load_batch(paths: Sequence[Path], metadata: dict) -> np.ndarray:
    """Preprocess images exactly as serving does; unreadable ones are skipped with a warning."""
    arrays = []
    for path in paths:
        try:
            image = decoding.decode_image(Path(path).read_bytes(), draft_size=metadata["resize_size"], where=str(path))
        except (OSError, ServingError) as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        arrays.append(
            decoding.preprocess(image, metadata["image_size"], metadata["resize_size"], metadata["mean"], metadata["std"])
        )
    size = int(metadata["image_size"])
    return np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)


def export_onnx(model: nn.Module, image_size: int, path: Path) -> None:
    """fp32 ONNX graph with a dynamic batch dimension (input ``input``, output ``logits``)."""
    example = (torch.zeros(2, 3, image_size, image_size),)
    # The exporter reports progress on stdout; the package command's stdout is its result.
    with contextlib.redirect_stdout(sys.stderr), torch.inference_mode(False), torch.no_grad():
        try:
            import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
        except ImportError:
            logger.warning("onnxscript is not installed: using the legacy TorchScript ONNX exporter")
            torch.onnx.export(
                model, example, str(path), input_names=[ONNX_INPUT], output_names=["logits"],
                dynamic_axes={ONNX_INPUT: {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET, dynamo=False,
            )
            return
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=[ONNX_INPUT],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def verify_export(model: nn.Module, path: Path, image_size: int, metadata: dict) -> None:
    """ONNX Runtime fp32 must reproduce the eager logits, or the export is wrong."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, image_size, image_size, generator=generator)
    with torch.inference_mode():
        expected = model(batch).numpy()
    got = OnnxRuntime(path, {"runtime": "onnx"}).logits(batch.numpy())
    difference = float(np.abs(got - expected).max())
    if not np.isfinite(difference) or difference > ONNX_FP32_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise OptimizeError(f"the ONNX export differs from the eager network (max |logit diff| {difference:.3g})")


class _BatchReader:
    """onnxruntime's CalibrationDataReader protocol over a preprocessed batch, one image at a time."""

    def __init__(self, batch: np.ndarray):
        self._items = iter([{ONNX_INPUT: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self):
        return next(self._items, None)


# Static INT8 recipes (ONNX Runtime quantize_static options), compared in bench/bench_quant.py.
# "vnni": u8 activations x s8 weights, the pair VNNI's vpdpbusd multiplies exactly. Without VNNI
# (AVX2-only CPUs) ORT's u8 x s8 kernel sums pairs of products into int16, which saturates:
# "avx2" quantises weights to 7 bits (reduce_range) so the pair sums cannot overflow.
RECIPES: dict[str, dict] = {
    "vnni": {"weight_type": "QInt8", "reduce_range": False, "per_channel": True, "exclude": ()},
    "avx2": {"weight_type": "QInt8", "reduce_range": True, "per_channel": True, "exclude": ()},
    # Candidates the benchmark weighs against those two:
    "u8u8": {"weight_type": "QUInt8", "reduce_range": False, "per_channel": True, "exclude": ()},
    "per-tensor": {"weight_type": "QInt8", "reduce_range": False, "per_channel": False, "exclude": ()},
    "vnni, fp32 stem/head": {"weight_type": "QInt8", "reduce_range": False, "per_channel": True,
                             "exclude": ("stem", "head")},
    "vnni, fp32 project convs": {"weight_type": "QInt8", "reduce_range": False, "per_channel": True,
                                 "exclude": ("stem", "head", "project")},
}
DEFAULT_RECIPE = "vnni"
# Flags under which ORT's u8 x s8 dot products are exact: x86 VNNI/AMX, Arm's dot-product instructions.
EXACT_INT8_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")

# The CPU flags of SageMaker's ml.* instance families (as runtimes.CPU_FEATURES names them), for
# quantising for the instance an artifact is packaged for rather than for the packaging machine.
# ml.m5/c5/r5/t3 run on Skylake-SP (no VNNI) or Cascade Lake (VNNI) hosts: only what both have.
INSTANCE_CPU_FEATURES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("t2", "m4", "c4"), ("avx2", "fma")),  # Haswell/Broadwell
    **dict.fromkeys(("t3", "m5", "m5d", "c5", "c5d", "c5n", "r5", "r5d"), ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")),
    **dict.fromkeys(("m6i", "m6id", "c6i", "c6id", "r6i", "r6id"),  # Ice Lake
                    ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")),
    **dict.fromkeys(("m7i", "m7i-flex", "c7i", "r7i"),  # Sapphire Rapids
                    ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                     "amx_tile", "amx_int8", "amx_bf16")),
    **dict.fromkeys(("c6g", "c6gn", "m6g", "r6g"), ("asimd", "asimddp")),  # Graviton2
    **dict.fromkeys(("c7g", "c7gn", "m7g", "r7g"), ("asimd", "asimddp", "sve", "i8mm")),  # Graviton3
}


def instance_cpu_features(instance_type: str) -> tuple[str, ...] | None:
    """The CPU flags of ``ml.FAMILY.SIZE``'s family, or None for a family not in the table."""
    parts = instance_type.split(".")
    return INSTANCE_CPU_FEATURES.get(parts[1]) if len(parts) == 3 and parts[0] == "ml" else None


def recipe_for(cpu_features: Sequence[str]) -> str:
    """The recipe for a CPU with these flags: "vnni" where u8 x s8 products are exact, else "avx2"."""
    return "vnni" if set(cpu_features) & set(EXACT_INT8_FEATURES) else "avx2"


def _excluded_nodes(model_path: Path, parts: Sequence[str]) -> list[str]:
    """Names of the nodes a recipe keeps in fp32: "stem" (the first conv), "head" (the last conv and
    the classifier), "project" (every 1x1 linear-bottleneck conv: its output feeds a residual Add or
    the next block without an activation, so its outliers are not clipped)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    convs = [node for node in graph.node if node.op_type == "Conv"]
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names: list[str] = []
    if "stem" in parts and convs:
        names.append(convs[0].name)
    if "head" in parts:
        names += [convs[-1].name] if convs else []
        names += [node.name for node in graph.node if node.op_type in ("Gemm", "MatMul")]
    if "project" in parts:
        for node in convs[1:-1]:
            following = consumers.get(node.output[0], [])
            if following and not any(n.op_type in ("Clip", "Relu") for n in following):
                names.append(node.name)
    return sorted(set(names))


def quantize_int8(fp32_path: Path, output_path: Path, calibration_batch: np.ndarray, recipe: str = DEFAULT_RECIPE) -> dict:
    """Static QDQ INT8 with ``RECIPES[recipe]``; returns the record for ``runtime_info.quantization``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if recipe not in RECIPES:
        raise OptimizeError(f"unknown quantisation recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    options = RECIPES[recipe]
    with tempfile.TemporaryDirectory(prefix="dogbreed-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference plus ORT's basic graph optimisations (conv+batch-norm folding) first, so
        # per-channel scales are computed on the folded weights.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
        excluded = _excluded_nodes(prepared, options["exclude"])
        quantize_static(
            str(prepared),
            str(output_path),
            _BatchReader(calibration_batch),
            quant_format=QuantFormat.QDQ,
            per_channel=options["per_channel"],
            reduce_range=options["reduce_range"],
            activation_type=QuantType.QUInt8,
            weight_type=getattr(QuantType, options["weight_type"]),
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": options["weight_type"] == "QInt8"},
        )
    weights = "int8, symmetric" if options["weight_type"] == "QInt8" else "uint8, asymmetric"
    return {
        "format": "QDQ",
        "recipe": recipe,
        "weights": f"{weights}, per {'channel' if options['per_channel'] else 'tensor'}"
                   + (", 7-bit range (reduce_range)" if options["reduce_range"] else ""),
        "activations": "uint8, per tensor, calibrated (min/max)",
        "fp32_nodes": len(excluded),
        "calibration_images": len(calibration_batch),
    }


def agreement(model: nn.Module, onnx_path: Path, metadata: dict, batch: np.ndarray) -> dict:
    """Top-1 agreement and largest probability difference between eager and the ONNX graph."""
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(batch[i : i + 16])) for i in range(0, len(batch), 16)]).numpy()
    expected, _ = probabilities(logits, metadata.get("output_indices"), metadata.get("dog_indices"))
    runtime = OnnxRuntime(onnx_path, metadata)
    got = np.concatenate([runtime.predict_proba(batch[i : i + 16])[0] for i in range(0, len(batch), 16)])
    agree = float((expected.argmax(1) == got.argmax(1)).mean())
    return {
        "images": len(batch),
        "top1_agreement": round(agree, 4),
        "max_abs_prob_diff": round(float(np.abs(expected - got).max()), 4),
    }


def write_self_check(model: nn.Module, metadata: dict, output_dir: Path, check_batch: np.ndarray,
                     threshold: float) -> dict:
    """Store up to SELF_CHECK_IMAGES held-out inputs (as the uint8 crops serving computes them from)
    with eager fp32's probabilities, for ``runtimes.check_int8`` to re-measure agreement on the CPU
    the artifact is loaded on; returns the metadata record (``runtime_info.self_check``)."""
    batch = check_batch[:SELF_CHECK_IMAGES]
    mean = np.asarray(metadata["mean"], dtype=np.float64)[None, :, None, None]
    std = np.asarray(metadata["std"], dtype=np.float64)[None, :, None, None]
    # preprocess() computes pixel / 255 normalised in float32: inverting and rounding recovers each
    # pixel exactly (the error is ~1e-4 of a level), so check_inputs() rebuilds the same input bits.
    pixels = np.clip(np.rint((batch.astype(np.float64) * std + mean) * 255.0), 0, 255).astype(np.uint8)
    from .serving.runtimes import check_inputs

    inputs = check_inputs(pixels, metadata["mean"], metadata["std"])
    with torch.inference_mode():
        logits = torch.cat([model(torch.from_numpy(inputs[i : i + 16])) for i in range(0, len(inputs), 16)]).numpy()
    reference, _ = probabilities(logits, metadata.get("output_indices"), metadata.get("dog_indices"))
    np.savez_compressed(output_dir / SELF_CHECK_FILE, pixels=pixels, reference_probs=reference.astype(np.float32))
    return {"file": SELF_CHECK_FILE, "images": len(pixels), "threshold": float(threshold),
            "fallback": ONNX_FP32_FILE, "reference": "eager fp32 probabilities"}


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
