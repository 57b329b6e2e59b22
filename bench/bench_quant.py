"""Compare INT8 quantisation recipes on this CPU: top-1 agreement with eager fp32 and speed, side by side.

    python bench/bench_quant.py [--quick] [--photos ../shared/data/dog-photos] [--threads 2]

Writes bench/results/quant.json and bench/results/quant.md (``--quick``: quant-quick.*).

The starter EfficientNet-Lite0 (real ImageNet weights), calibrated on 64 Stanford photos (seeded) and
checked on the other photos: each of ``dogbreed.optimize.RECIPES`` (ONNX Runtime static QDQ with
its options: reduce_range, u8/u8, per-tensor, nodes kept in fp32), ONNX Runtime fp32 as reference,
and NNCF's post-training quantisation (plain, and with accuracy control) when the ``nncf`` package is
importable. Agreement of INT8 depends on the instruction set (VNNI or not): the CPU's flags are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_flags, cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT.parent / "shared" / "data" / "dog-photos"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200 check photos, fewer timed runs, no NNCF accuracy control")
    parser.add_argument("--no-nncf", action="store_true", help="skip NNCF")
    parser.add_argument("--nncf-python", default=None,
                        help="interpreter with nncf, onnx and onnxruntime installed (NNCF runs there; default: this one)")
    parser.add_argument("--nncf-worker", nargs=3, metavar=("DATA_NPZ", "FP32_ONNX", "OUT_ONNX"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {message}", file=sys.stderr, flush=True)


def latency_ms(runtime, batch, repeats: int) -> float:
    for _ in range(3):
        runtime.logits(batch)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        runtime.logits(batch)
        samples.append(time.perf_counter() - started)
    return round(1000 * sorted(samples)[len(samples) // 2] / len(batch), 2)


def nncf_worker(data: str, fp32: str, out: str) -> None:
    """In the NNCF interpreter (nncf, onnx, onnxruntime, numpy; no torch or dogbreed needed)."""
    import numpy as np

    with np.load(data) as arrays:
        nncf_quantize(Path(fp32), Path(out), arrays["calibration"], arrays["check"], arrays["reference_top1"],
                      bool(arrays["accuracy_control"]))


def run_nncf(python: str, tmp: Path, fp32: Path, out: Path, calibration, check, reference_top1, control: bool) -> None:
    import subprocess

    import numpy as np

    data = tmp / "nncf-data.npz"
    np.savez(data, calibration=calibration, check=check, reference_top1=reference_top1, accuracy_control=control)
    done = subprocess.run([python, __file__, "--nncf-worker", str(data), str(fp32), str(out)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")


def nncf_quantize(fp32: Path, out: Path, calibration, check, reference_top1, accuracy_control: bool) -> None:
    import nncf
    import numpy as np
    import onnx

    ONNX_INPUT = "input"  # noqa: N806 - dogbreed.serving.runtimes.ONNX_INPUT (not importable here)
    model = onnx.load(str(fp32))
    calib = nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))], lambda x: {ONNX_INPUT: x})
    if not accuracy_control:
        quantized = nncf.quantize(model, calib, preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration))
    else:
        import onnxruntime as ort

        def validate(candidate, items) -> float:
            session = ort.InferenceSession(candidate.SerializeToString(), providers=["CPUExecutionProvider"])
            top1 = [int(session.run(None, {ONNX_INPUT: x})[0][0, 151:269].argmax()) for x in items]
            return float(np.mean(np.array(top1) == reference_top1[: len(top1)]))

        validation = nncf.Dataset([check[i : i + 1] for i in range(len(check))], lambda x: {ONNX_INPUT: x})
        quantized = nncf.quantize_with_accuracy_control(
            model, calib, validation, validation_fn=validate, max_drop=0.01, drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calibration))
    onnx.save(quantized, str(out))


def main(args) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from dogbreed import optimize
    from dogbreed.artifact import starter_model
    from dogbreed.serving.runtimes import OnnxRuntime

    torch.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), load_average()
    model, metadata = starter_model("efficientnet_lite0")
    photos = args.photos
    stanford = sorted((photos / "stanford-dogs-3breeds").rglob("*.jpg"))
    random.Random(0).shuffle(stanford)
    calibration_paths = stanford[: optimize.MAX_CALIBRATION_IMAGES]
    check_paths = sorted(set(photos.rglob("*.jpg")) - set(calibration_paths))
    if args.quick:
        random.Random(1).shuffle(check_paths)
        check_paths = sorted(check_paths[:200])
    calibration = optimize.load_batch(calibration_paths, metadata)
    check = optimize.load_batch(check_paths, metadata)
    repeats = 8 if args.quick else 30
    one, eight = check[:1], check[:8]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        optimize.export_onnx(model, 224, fp32)
        reference = OnnxRuntime(fp32, {**metadata, "runtime": "onnx"}, args.threads)
        rows["onnx fp32"] = {**optimize.agreement(model, fp32, metadata, check), "ms_b1": latency_ms(reference, one, repeats),
                             "ms_b8_per_image": latency_ms(reference, eight, max(3, repeats // 4)), "load": load_average()}
        with torch.inference_mode():
            eager_top1 = torch.cat([model(torch.from_numpy(check[i : i + 16])) for i in range(0, len(check), 16)])[:, 151:269].argmax(1).numpy()
        for recipe in optimize.RECIPES:
            log(f"recipe {recipe}")
            path = Path(tmp) / f"{recipe.replace(' ', '_').replace('/', '_').replace(',', '')}.onnx"
            record = optimize.quantize_int8(fp32, path, calibration, recipe)
            runtime = OnnxRuntime(path, {**metadata, "runtime": "onnx-int8"}, args.threads)
            rows[f"ORT {recipe}"] = {**optimize.agreement(model, path, metadata, check),
                                     "ms_b1": latency_ms(runtime, one, repeats),
                                     "ms_b8_per_image": latency_ms(runtime, eight, max(3, repeats // 4)),
                                     "weights": record["weights"], "fp32_nodes": record["fp32_nodes"], "load": load_average()}
        nncf_note = None
        nncf_python = args.nncf_python or sys.executable
        if args.no_nncf:
            nncf_note = "skipped (--no-nncf)"
        else:
            import subprocess

            probe = subprocess.run([nncf_python, "-c", "import nncf; print(nncf.__version__)"], capture_output=True, text=True)
            if probe.returncode != 0:
                nncf_note = f"not installed in {nncf_python} (pass --nncf-python)"
            else:
                nncf_version = probe.stdout.strip()
        if nncf_note is None:
            half = len(check) // 2
            # Accuracy control re-validates many candidates: over 10 minutes on 2 busy cores, so full runs only.
            variants = [("NNCF (mixed preset)", False)] + ([] if args.quick else [("NNCF with accuracy control (max drop 1%)", True)])
            for label, control in variants:
                log(label)
                path = Path(tmp) / f"nncf_{control}.onnx"
                try:
                    # Accuracy control validates on the first half; every figure is measured on the second.
                    run_nncf(nncf_python, Path(tmp), fp32, path, calibration, check[:half], eager_top1[:half], control)
                except Exception as exc:  # noqa: BLE001 - report and go on with the other recipes
                    rows[label] = {"error": " ".join(str(exc).split())[:200]}
                    continue
                runtime = OnnxRuntime(path, {**metadata, "runtime": "onnx-int8"}, args.threads)
                rows[label] = {**optimize.agreement(model, path, metadata, check[half:]),
                               "ms_b1": latency_ms(runtime, one, repeats),
                               "ms_b8_per_image": latency_ms(runtime, eight, max(3, repeats // 4)), "load": load_average()}
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "cpu_flags": cpu_flags(), "load_start": load_start,
                    "load_end": load_average()},
        "threads": args.threads,
        "calibration_images": len(calibration),
        "check_images": len(check),
        "recipe_for_this_cpu": optimize.recipe_for(cpu_flags()),
        "nncf": nncf_note or f"nncf {nncf_version}, measured",
        "rows": rows,
    }
    stem = "quant-quick" if args.quick else "quant"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    fp32_ms = rows["onnx fp32"]["ms_b1"]
    lines = [
        "# INT8 quantisation recipes" + (" (quick run)" if args.quick else ""),
        "",
        f"`python bench/bench_quant.py{' --quick' if args.quick else ''}` on {cpu_model()} ({os.cpu_count()} CPUs, "
        f"{args.threads} threads), {results['date']}, {results['wall_s']:.0f} s. CPU flags: **{' '.join(cpu_flags())}**. "
        f"Load average start / end: {load_start} / {results['machine']['load_end']}.",
        "",
        f"EfficientNet-Lite0 starter, calibrated on {len(calibration)} Stanford photos, top-1 agreement among the 118 "
        f"breeds with eager fp32 on {len(check)} other photos (NNCF rows: the second half; accuracy control tunes on "
        f"the first). `dogbreed package` picks `{results['recipe_for_this_cpu']}` for this CPU. NNCF: {results['nncf']}.",
        "",
        "| recipe | top-1 agreement | largest prob. diff | b1 ms | speed-up vs ORT fp32 | b8 ms per image | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} | | | | | |")
            continue
        lines.append(f"| {name} | {100 * row['top1_agreement']:.1f}% | {row['max_abs_prob_diff']} | {row['ms_b1']} | "
                     f"{fp32_ms / row['ms_b1']:.2f}x | {row['ms_b8_per_image']} | {row['load']} |")
    lines.append("")
    (args.output / f"{stem}.md").write_text("\n".join(lines))
    log(f"wrote {args.output / (stem + '.md')}")
    return results


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    if arguments.nncf_worker:
        nncf_worker(*arguments.nncf_worker)
    else:
        main(arguments)
