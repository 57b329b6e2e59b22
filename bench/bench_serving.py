"""Benchmark serving on this machine: every runtime, both backbones, speed and agreement side by side.

    python bench/bench_serving.py [--quick] [--photos ../shared/data/dog-photos] [--threads 2]

Writes bench/results/serving.json and bench/results/serving.md (``--quick``: serving-quick.*, a
sanity run of a few minutes; the full run takes about 10-15 minutes on a 2-core machine).

For each backbone -- the starter EfficientNet-Lite0 (real ImageNet weights) and ResNet-50 (random
weights: no trained ResNet-50 travels with the project, and speed does not depend on the weights) --
and each runtime (eager fp32, ``onnx`` = ONNX Runtime fp32, ``onnx-int8`` = static QDQ INT8, built by
``dogbreed.optimize`` exactly as ``dogbreed package`` builds it):

- agreement on *this* CPU: top-1 among the 118 breeds against eager fp32 on the dog photos not used
  for calibration, through the runtime ``dogbreed serve`` would pick (an INT8 artifact runs its
  self-check first and may fall back to fp32: both the raw INT8 figure and what is served are shown);
- model-only latency at batch 1 and batch 8 (per image), median of runs taken before and after the
  server runs;
- through ``dogbreed serve`` on 127.0.0.1: time to first 200 /ping, one client (p50/p95/p99), 8
  concurrent clients (img/s and p50/p95/p99), against eager batch 1 measured in the same run;
- for the starter's fp32 ``onnx`` artifact, a sweep of server settings (intra-op threads, batch size,
  the micro-batcher's window, decode threads) for the 8-client target.

The CPU's flags (AVX2, AVX-512, VNNI, AMX) and the load average with every figure are recorded: the
machine is shared and INT8 accuracy depends on the instruction set.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import cpu_flags, cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
DOGBREED = Path(sys.executable).parent / "dogbreed"
PORTS = range(15000, 16000)  # this project's share of ports on the shared machine
BACKBONES = ("efficientnet_lite0", "resnet50")
RUNTIMES = ("eager", "onnx", "onnx-int8")
AGREEMENT_TARGET = 0.99
THROUGHPUT_RATIO_TARGET = 4.0
CALIBRATION_IMAGES = 64

# (label, `dogbreed serve` options): threads per forward pass vs batch size vs the batcher's window.
SWEEP = [
    ("2 threads, batch <= 8, 5 ms window (default)", {"threads": 2, "max-batch-size": 8, "max-wait-ms": 5, "decode-threads": 2}),
    ("2 threads, batch <= 8, 2 ms window", {"threads": 2, "max-batch-size": 8, "max-wait-ms": 2, "decode-threads": 2}),
    ("2 threads, batch <= 4, 2 ms window", {"threads": 2, "max-batch-size": 4, "max-wait-ms": 2, "decode-threads": 2}),
    ("2 threads, batch 1 (no batching)", {"threads": 2, "max-batch-size": 1, "max-wait-ms": 0, "decode-threads": 2}),
    ("1 thread, batch <= 8, 5 ms window, 1 decode thread", {"threads": 1, "max-batch-size": 8, "max-wait-ms": 5, "decode-threads": 1}),
    ("2 threads, batch <= 2, 1 ms window", {"threads": 2, "max-batch-size": 2, "max-wait-ms": 1, "decode-threads": 2}),
]

# Check photos per backbone (None: all but the calibration ones). ResNet-50's random weights make its
# agreement a check of the graph only, so a sample keeps the full run within 15 minutes.
FULL = {"photos": {"efficientnet_lite0": None, "resnet50": 160}, "repeats": 30,
        "requests": {"efficientnet_lite0": 320, "resnet50": 96}, "sweep": len(SWEEP)}
QUICK = {"photos": {"efficientnet_lite0": 96, "resnet50": 48}, "repeats": 6,
         "requests": {"efficientnet_lite0": 64, "resnet50": 24}, "sweep": 2}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT.parent / "shared" / "data" / "dog-photos"),
                        help="the real dog photos (default: ../shared/data/dog-photos or $DOG_PHOTOS_DIR)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every runtime (default: 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--quick", action="store_true", help="a sanity run: fewer photos, repeats and requests")
    parser.add_argument("--backbones", default=",".join(BACKBONES), help=f"comma-separated (default: {','.join(BACKBONES)})")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results folder (default: bench/results)")
    return parser


# --- helpers --------------------------------------------------------------------------------------


def percentiles_ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 2)

    return {"p50": at(50), "p95": at(95), "p99": at(99), "n": len(ordered)}


def time_calls(function, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def free_port() -> int:
    for port in random.Random(os.getpid()).sample(PORTS, len(PORTS)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 15000-15999")


def sample_jpeg(photos: Path) -> Path:
    """The real photo whose size is closest to 100 KB."""
    candidates = sorted(photos.rglob("*.jpg"))
    return min(candidates, key=lambda p: (abs(p.stat().st_size - 100_000), str(p)))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {message}", file=sys.stderr, flush=True)


# --- artifacts ------------------------------------------------------------------------------------


def network(backbone: str):
    """The starter (real weights) for Lite0; ResNet-50 with random weights and the starter's outputs."""
    import torch
    from dogbreed.artifact import build_metadata, starter_model
    from dogbreed.imagenet import DOG_INDICES, dog_breed_names
    from dogbreed.serving.architectures import NORMALISATION, build_model
    from dogbreed.serving.transforms import EvalPreset

    if backbone == "efficientnet_lite0":
        return (*starter_model(backbone), True)
    torch.manual_seed(0)
    model = build_model(backbone, 1000).eval()
    mean, std = NORMALISATION[backbone]
    metadata = build_metadata(
        name=f"{backbone}-bench", backbone=backbone, classes=dog_breed_names(), preset=EvalPreset(224, 256, mean, std),
        metrics={}, training_args={"bench": True}, output_indices=DOG_INDICES, dog_indices=DOG_INDICES, num_outputs=1000,
    )
    return model, metadata, False


def build_artifacts(work: Path, backbone: str, model, metadata: dict, calibration: list[Path], real_weights: bool) -> dict:
    """Folder artifacts for each runtime, as `dogbreed package` writes them (without vendored wheels:
    this machine has onnxruntime installed)."""
    from dogbreed import optimize
    from dogbreed.artifact import write_artifact

    eager = write_artifact(model, metadata, work / f"{backbone}-eager", "eager", layout="dir")
    artifacts = {"eager": eager}
    for runtime in ("onnx", "onnx-int8"):
        folder = work / f"{backbone}-{runtime}"
        shutil.copytree(eager, folder)
        # Random weights give near-uniform outputs, whose top-1 means nothing: no threshold for them.
        threshold = {} if real_weights else {"min_agreement": 0.0}
        updates = optimize.build_runtime(model, metadata, folder, runtime, calibration if runtime == "onnx-int8" else (),
                                         **threshold)
        document = json.loads((folder / "metadata.json").read_text())
        document.update(updates)
        (folder / "metadata.json").write_text(json.dumps(document, indent=2))
        artifacts[runtime] = folder
    return artifacts


# --- agreement ------------------------------------------------------------------------------------


def agreement_here(artifacts: dict, metadata: dict, check_batch, threads: int) -> dict:
    """Top-1 agreement with eager fp32 on this CPU: of each runtime as served, and of the raw INT8 graph."""
    import numpy as np
    from dogbreed.serving import handlers
    from dogbreed.serving.runtimes import OnnxRuntime

    def run(runtime):
        return np.concatenate([runtime.predict_proba(check_batch[i : i + 16])[0] for i in range(0, len(check_batch), 16)])

    reference = run(handlers.load(artifacts["eager"], threads=threads).runtime)
    results = {}
    for name in ("onnx", "onnx-int8"):
        served = handlers.load(artifacts[name], threads=threads)
        got = run(served.runtime)
        results[name] = {
            "served_as": served.runtime_name,
            "top1_agreement": round(float((got.argmax(1) == reference.argmax(1)).mean()), 4),
            "max_abs_prob_diff": round(float(np.abs(got - reference).max()), 4),
            "images": len(check_batch),
            "self_check": served.self_check,
            "load": load_average(),
        }
    raw = run(OnnxRuntime(artifacts["onnx-int8"] / "model.onnx", {**metadata, "runtime": "onnx-int8"}, threads))
    results["onnx-int8 graph (raw)"] = {
        "top1_agreement": round(float((raw.argmax(1) == reference.argmax(1)).mean()), 4),
        "max_abs_prob_diff": round(float(np.abs(raw - reference).max()), 4),
        "images": len(check_batch),
        "load": load_average(),
    }
    return results


# --- model only -----------------------------------------------------------------------------------


def model_only(artifacts: dict, metadata: dict, threads: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward pass (per image at batch 8) of each runtime, as served (self-check included)."""
    import numpy as np
    from dogbreed.serving import handlers

    rng = np.random.default_rng(0)
    one = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    eight = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)
    samples = {}
    for name in RUNTIMES:
        runtime = handlers.load(artifacts[name], threads=threads).runtime
        b1 = max(3, repeats if name != "eager" else repeats // 2)
        samples[f"{name}, batch 1"] = time_calls(lambda r=runtime: r.predict_proba(one), b1)
        samples[f"{name}, batch 8 (per image)"] = [
            t / 8 for t in time_calls(lambda r=runtime: r.predict_proba(eight), max(2, repeats // 6), warmup=1)]
        if name == "onnx":  # how far batching pays for fp32 here: the server's batch size follows from it
            for size in (2, 4):
                samples[f"onnx, batch {size} (per image)"] = [
                    t / size for t in time_calls(lambda r=runtime, n=size: r.predict_proba(eight[:n]),
                                                 max(2, repeats // 3), warmup=1)]
    return samples


# --- the server -----------------------------------------------------------------------------------


class Server:
    def __init__(self, artifact: Path, threads: int, options: dict | None = None):
        options = {"threads": threads, **(options or {})}
        self.port = free_port()
        extra = [item for key, value in options.items() for item in (f"--{key}", str(value))]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(DOGBREED), "serve", "--model", str(artifact), "--port", str(self.port), "--log-level", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dogbreed serve exited: {self.process.stderr.read()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/ping")
                response = connection.getresponse()
                if response.status == 200:
                    self.ping = json.loads(response.read())
                    break
            except OSError:
                pass
            time.sleep(0.01)
        self.time_to_first_ping = time.perf_counter() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def client_loop(port: int, body: bytes, count: int, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "image/jpeg"}
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
    connection.close()


def load_test(port: int, body: bytes, requests: int, concurrency: int) -> dict:
    client_loop(port, body, 5, [])  # warm-up
    latencies: list[float] = []
    per_client = max(1, requests // concurrency)
    threads = [threading.Thread(target=client_loop, args=(port, body, per_client, latencies)) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"clients": concurrency, **percentiles_ms(latencies), "img_per_s": round(len(latencies) / elapsed, 1),
            "load": load_average()}


def serve_and_measure(artifact: Path, body: bytes, threads: int, requests: int, concurrency: int,
                      options: dict | None = None, one_client: bool = True) -> dict:
    server = Server(artifact, threads, options)
    try:
        result = {"time_to_first_ping_s": round(server.time_to_first_ping, 2), "runtime": server.ping.get("runtime")}
        if one_client:
            client_loop(server.port, body, 5, [])
            latencies: list[float] = []
            client_loop(server.port, body, max(8, requests // 4), latencies)
            result["one_client"] = {**percentiles_ms(latencies), "load": load_average()}
        result["concurrent"] = load_test(server.port, body, requests, concurrency)
    finally:
        server.stop()
    return result


# --- one backbone ---------------------------------------------------------------------------------


def bench_backbone(backbone: str, photos: Path, body: bytes, args, mode: dict, work: Path) -> dict:
    from dogbreed import optimize

    model, metadata, real_weights = network(backbone)
    stanford = sorted((photos / "stanford-dogs-3breeds").rglob("*.jpg"))
    random.Random(0).shuffle(stanford)
    calibration = stanford[:CALIBRATION_IMAGES]
    check = sorted(set(photos.rglob("*.jpg")) - set(calibration))
    if mode["photos"][backbone]:
        random.Random(1).shuffle(check)
        check = sorted(check[: mode["photos"][backbone]])
    log(f"{backbone}: building the eager, onnx and onnx-int8 artifacts")
    artifacts = build_artifacts(work, backbone, model, metadata, calibration, real_weights)
    log(f"{backbone}: agreement on {len(check)} photos")
    agreement = agreement_here(artifacts, metadata, optimize.load_batch(check, metadata), args.threads)
    del model
    log(f"{backbone}: model-only latency")
    samples = model_only(artifacts, metadata, args.threads, mode["repeats"] // 2)
    server = {}
    requests = mode["requests"][backbone]
    for name in RUNTIMES:
        log(f"{backbone}: dogbreed serve, {name}")
        count = requests if name != "eager" else max(16, requests // 4)
        server[name] = serve_and_measure(artifacts[name], body, args.threads, count, args.concurrency)
    sweep = []
    if backbone == "efficientnet_lite0":
        for label, options in SWEEP[: mode["sweep"]]:
            log(f"{backbone}: onnx sweep: {label}")
            sweep.append({"label": label, "options": options,
                          **serve_and_measure(artifacts["onnx"], body, args.threads, requests, args.concurrency,
                                              options, one_client=False)})
    log(f"{backbone}: model-only latency, again")
    for name, values in model_only(artifacts, metadata, args.threads, mode["repeats"] // 2).items():
        samples[name] += values
    return {
        "weights": "real ImageNet (starter)" if real_weights else "random (speed only; agreement means little)",
        "check_photos": len(check),
        "agreement": agreement,
        "model_only_ms": {name: {**percentiles_ms(values), "load": load_average()} for name, values in samples.items()},
        "server": server,
        "sweep": sweep,
    }


# --- report ---------------------------------------------------------------------------------------


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def summarise(result: dict) -> dict:
    """Ratios and targets of one backbone: against eager batch 1 of the same run."""
    m = result["model_only_ms"]
    eager_b1 = m["eager, batch 1"]["p50"]
    eager_rate = 1000 / eager_b1
    rows = {}
    for name in RUNTIMES:
        served = result["server"][name]
        agreement = 1.0 if name == "eager" else result["agreement"][name]["top1_agreement"]
        rate = served["concurrent"]["img_per_s"]
        rows[name] = {
            "speedup_b1": round(eager_b1 / m[f"{name}, batch 1"]["p50"], 2),
            "speedup_b8": round(eager_b1 / m[f"{name}, batch 8 (per image)"]["p50"], 2),
            "throughput_ratio": round(rate / eager_rate, 2),
            "throughput_met": rate / eager_rate >= THROUGHPUT_RATIO_TARGET,
            "top1_agreement": agreement,
            "agreement_met": agreement >= AGREEMENT_TARGET,
        }
    best = max(result["sweep"], key=lambda s: s["concurrent"]["img_per_s"], default=None)
    return {"eager_b1_ms": eager_b1, "eager_b1_img_per_s": round(eager_rate, 1), "runtimes": rows,
            "best_sweep": None if best is None else {"label": best["label"], "img_per_s": best["concurrent"]["img_per_s"],
                                                      "ratio": round(best["concurrent"]["img_per_s"] / eager_rate, 2)}}


def write_markdown(results: dict, path: Path) -> None:
    machine = results["machine"]
    lines = [
        "# Serving benchmark" + (" (quick sanity run)" if results["quick"] else ""),
        "",
        f"`python bench/bench_serving.py{' --quick' if results['quick'] else ''}` on {machine['cpu']} "
        f"({machine['cpus']} CPUs, {results['threads']} intra-op threads, OMP_WAIT_POLICY={results['omp_wait_policy']}), "
        f"{results['date']}, {results['wall_s']:.0f} s.",
        "",
        f"CPU flags: **{' '.join(machine['cpu_flags']) or 'unknown'}** "
        f"(VNNI: {yes_no('avx512_vnni' in machine['cpu_flags'] or 'avx_vnni' in machine['cpu_flags'])}, "
        f"AMX: {yes_no('amx_int8' in machine['cpu_flags'])}). Load average (1/5/15 min) at start / end: "
        f"{machine['load_start']} / {machine['load_end']}; each figure below carries the load when it was taken "
        "(the machine is shared: other processes inflate timings).",
        "",
        f"Request body: `{results['sample']['name']}`, {results['sample']['bytes'] / 1000:.0f} KB, {results['sample']['size']} px. "
        "Agreement: top-1 among the 118 breeds against eager fp32, measured here, on photos not used for calibration.",
        "",
    ]
    for backbone, result in results["backbones"].items():
        summary = result["summary"]
        m, served = result["model_only_ms"], result["server"]
        lines += [
            f"## {backbone} ({result['weights']})",
            "",
            f"Eager batch 1: {summary['eager_b1_ms']} ms = {summary['eager_b1_img_per_s']} img/s; the 8-client target "
            f"is {THROUGHPUT_RATIO_TARGET:.0f}x that = {THROUGHPUT_RATIO_TARGET * summary['eager_b1_img_per_s']:.1f} img/s.",
            "",
            "| runtime | served as | top-1 agreement here | model-only b1 p50 ms (speed-up) | b8 per image ms (speed-up) "
            "| 1 client p50 / p95 / p99 ms | 8 clients img/s (x eager b1) | 8 clients p50 / p95 / p99 ms | first /ping s | load |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in RUNTIMES:
            row, s = summary["runtimes"][name], served[name]
            agree = result["agreement"].get(name, {})
            agreement = "reference" if name == "eager" else (
                f"{100 * agree['top1_agreement']:.1f}% of {agree['images']}")
            one, many = s["one_client"], s["concurrent"]
            lines.append(
                f"| {name} | {s['runtime']} | {agreement} | {m[f'{name}, batch 1']['p50']} ({row['speedup_b1']}x) | "
                f"{m[f'{name}, batch 8 (per image)']['p50']} ({row['speedup_b8']}x) | {one['p50']} / {one['p95']} / {one['p99']} | "
                f"{many['img_per_s']} ({row['throughput_ratio']}x) | {many['p50']} / {many['p95']} / {many['p99']} | "
                f"{s['time_to_first_ping_s']} | {many['load']} |")
        per_image = " / ".join(str(m[key]["p50"]) for key in ("onnx, batch 1", "onnx, batch 2 (per image)",
                                                               "onnx, batch 4 (per image)", "onnx, batch 8 (per image)"))
        lines += ["", f"`onnx` fp32 model-only, ms per image at batch 1 / 2 / 4 / 8: {per_image}."]
        raw = result["agreement"]["onnx-int8 graph (raw)"]
        check = result["agreement"]["onnx-int8"].get("self_check") or {}
        lines += [
            "",
            f"INT8 graph itself on this CPU: {100 * raw['top1_agreement']:.1f}% top-1 agreement "
            f"(largest probability difference {raw['max_abs_prob_diff']}). Its self-check at load: "
            + (f"{100 * check['top1_agreement']:.1f}% on {check['images']} stored images, threshold "
               f"{100 * check['threshold']:.0f}% -> {'passed' if check.get('passed') else 'failed'}, served "
               f"`{check.get('serving')}`." if check.get("top1_agreement") is not None else "none."),
            "",
        ]
        if result["sweep"]:
            lines += [
                "Server settings for the fp32 `onnx` artifact, 8 clients:",
                "",
                "| settings | img/s (x eager b1) | p50 / p95 / p99 ms | load |",
                "| --- | --- | --- | --- |",
            ]
            for entry in result["sweep"]:
                many = entry["concurrent"]
                lines.append(f"| {entry['label']} | {many['img_per_s']} ({many['img_per_s'] / summary['eager_b1_img_per_s']:.2f}x) | "
                             f"{many['p50']} / {many['p95']} / {many['p99']} | {many['load']} |")
            best = summary["best_sweep"]
            lines += ["", f"Best: {best['label']}, {best['img_per_s']} img/s = {best['ratio']}x eager batch 1 "
                      f"(target {THROUGHPUT_RATIO_TARGET:.0f}x: {yes_no(best['ratio'] >= THROUGHPUT_RATIO_TARGET)}).", ""]
    lines += ["## Targets", "",
              "| backbone | runtime | >= 99% top-1 agreement here | 8 clients >= 4x eager b1 |", "| --- | --- | --- | --- |"]
    for backbone, result in results["backbones"].items():
        for name in ("onnx", "onnx-int8"):
            row = result["summary"]["runtimes"][name]
            lines.append(f"| {backbone} | {name} | {yes_no(row['agreement_met'])} ({100 * row['top1_agreement']:.1f}%) | "
                         f"{yes_no(row['throughput_met'])} ({row['throughput_ratio']}x) |")
    lines.append("")
    path.write_text("\n".join(lines))


def main(args) -> dict:
    photos = args.photos
    if not photos.is_dir():
        raise SystemExit(f"no photos at {photos}: pass --photos DIR")
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    unknown = sorted(set(backbones) - set(BACKBONES))
    if unknown:
        raise SystemExit(f"unknown backbone(s) {', '.join(unknown)}; choose from {', '.join(BACKBONES)}")
    mode = QUICK if args.quick else FULL
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    # As `dogbreed serve` does: OpenMP threads sleep rather than spin (a fairer eager baseline on a
    # shared machine, and so harder targets).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), load_average()
    body_path = sample_jpeg(photos)
    body = body_path.read_bytes()
    from PIL import Image

    with Image.open(body_path) as image:
        size = f"{image.width}x{image.height}"
    log(f"CPU {cpu_model()}, flags: {' '.join(cpu_flags())}")
    results = {"backbones": {}}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        for backbone in backbones:
            results["backbones"][backbone] = bench_backbone(backbone, photos, body, args, mode, Path(tmp))
            results["backbones"][backbone]["summary"] = summarise(results["backbones"][backbone])
    results.update({
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started, 1),
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "cpu_flags": cpu_flags(),
                    "load_start": load_start, "load_end": load_average()},
        "sample": {"name": str(body_path.relative_to(photos)), "bytes": len(body), "size": size},
    })
    args.output.mkdir(parents=True, exist_ok=True)
    stem = "serving-quick" if args.quick else "serving"
    (args.output / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, args.output / f"{stem}.md")
    log(f"wrote {args.output / (stem + '.md')}")
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
