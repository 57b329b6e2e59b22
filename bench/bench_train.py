"""Benchmark training on this machine's CPU: throughput per precision, the feature cache, and accuracy.

    python bench/bench_train.py [--threads N] [--steps 4] [--photos ../shared/data/dog-photos] [--skip-finetune]

Writes bench/results/train.md (and train.json). Numbers, not assertions: the targets are checked and
reported in the file.

1. ResNet-50, 224 px, batch 16, full fine-tuning (every layer trains, AdamW): images/s of the
   training step (forward, backward, optimizer) in fp32 / contiguous memory, and in the default
   CPU configuration of ``dogbreed train`` (bf16 autocast + channels_last when the CPU has bf16).
   Inputs are tensors already in memory, so the number is the model's, not the JPEG decoder's; the
   two configurations alternate step by step so that on a shared machine both see the same load.
   Target: default >= 3x fp32.
2. Frozen backbone (``--mode frozen --augmentation none``): one epoch over real photos that runs the
   backbone (decode + forward + head step), the one-off cost of computing the feature cache, and an
   epoch on the cached features. Target: cached epoch >= 20x faster than the uncached one.
3. Fine-tuning the starter weights (ImageNet EfficientNet-Lite0, offline) on stanford-dogs-3breeds
   with a stratified 70/15/15 split through ``dogbreed train``; test accuracy. Target >= 0.95.

The machine may be shared: the load average before and after each part is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, load_average

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"



def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


def make_stepper(*, amp: str, channels_last: bool, batch_size: int, image_size: int = 224):
    """A function running one full fine-tuning step of ResNet-50 through dogbreed.train.train_one_epoch."""
    import torch

    from dogbreed.models import apply_trainable, backbone_stages, create_model, set_train_mode
    from dogbreed.train import StepContext, build_optimizer, parse_args, resolve_amp, train_one_epoch

    device = torch.device("cpu")
    args = parse_args(["--data", "unused", "--amp", amp, "--channels-last", str(channels_last)])
    torch.manual_seed(0)
    model = create_model("resnet50", 133, "none")
    depth = len(backbone_stages(model))
    apply_trainable(model, depth)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, args, device)
    batch = (torch.randn(batch_size, 3, image_size, image_size), torch.randint(0, 133, (batch_size,)))
    amp_dtype = resolve_amp(amp, device)
    ctx = StepContext(device=device, amp_dtype=amp_dtype, channels_last=channels_last)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    set_train_mode(model, depth)

    def step() -> float:
        started = time.perf_counter()
        train_one_epoch(model, criterion, optimizer, [batch], 1, ctx)
        return time.perf_counter() - started

    step.label = str(amp_dtype).removeprefix("torch.") if amp_dtype else "fp32"
    return step


def step_throughputs(configs: dict, *, steps: int, batch_size: int) -> dict:
    """Images/s per configuration. Steps of the configurations alternate, so on a shared machine
    they see the same load; the first step of each (warm-up) is not counted."""
    steppers = {name: make_stepper(batch_size=batch_size, **config) for name, config in configs.items()}
    times = {name: [] for name in steppers}
    for round_ in range(steps + 1):
        for name, step in steppers.items():
            elapsed = step()
            if round_ > 0:
                times[name].append(elapsed)
    return {
        name: {"amp": steppers[name].label, "channels_last": configs[name]["channels_last"], "steps_timed": steps,
               "median_step_s": statistics.median(times[name]), "images_per_s": batch_size / statistics.median(times[name])}
        for name in steppers
    }


def cache_speedup(photos: list[tuple[str, int]], *, batch_size: int, epochs_cached: int) -> dict:
    """Frozen ResNet-50: an epoch that runs the backbone vs an epoch on cached features."""
    import torch
    from torch.utils.data import DistributedSampler, TensorDataset

    from dogbreed.data import ImageDataset
    from dogbreed.models import NORMALISATION, apply_trainable, create_model, head_of, set_train_mode
    from dogbreed.presets import make_presets
    from dogbreed.train import (
        StepContext, build_optimizer, compute_features, make_loader, parse_args, resolve_amp, train_one_epoch,
    )

    device = torch.device("cpu")
    args = parse_args(["--data", "unused", "--mode", "frozen", "--augmentation", "none"])
    amp_dtype = resolve_amp(args.amp, device)
    torch.manual_seed(0)
    model = create_model("resnet50", 3, "none").to(memory_format=torch.channels_last)
    apply_trainable(model, 0)
    optimizer = build_optimizer(model, args, device)
    criterion = torch.nn.CrossEntropyLoss()
    preset, _ = make_presets(augmentation="none", crop_size=224, resize_size=256, mean=NORMALISATION["resnet50"][0],
                             std=NORMALISATION["resnet50"][1])
    dataset = ImageDataset(photos, preset)
    ctx = StepContext(device=device, amp_dtype=amp_dtype, channels_last=True)

    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    started = time.perf_counter()
    set_train_mode(model, 0)
    train_one_epoch(model, criterion, optimizer, make_loader(dataset, batch_size=batch_size, sampler=sampler, workers=0,
                                                             device=device), 1, ctx)
    uncached = time.perf_counter() - started

    started = time.perf_counter()
    features, labels = compute_features(model, dataset, device=device, batch_size=batch_size, workers=0,
                                        amp_dtype=amp_dtype, channels_last=True)
    build = time.perf_counter() - started

    cached_times = []
    head = head_of(model)
    cached = TensorDataset(features, labels)
    for epoch in range(epochs_cached):
        sampler = DistributedSampler(cached, num_replicas=1, rank=0, shuffle=True, seed=0)
        sampler.set_epoch(epoch)
        head.train()
        started = time.perf_counter()
        train_one_epoch(head, criterion, optimizer, make_loader(cached, batch_size=batch_size, sampler=sampler, workers=0,
                                                                device=device), epoch + 2, ctx)
        cached_times.append(time.perf_counter() - started)
    cached_epoch = statistics.median(cached_times)
    return {
        "images": len(dataset),
        "uncached_epoch_s": uncached,
        "cache_build_s": build,
        "cached_epoch_s": cached_epoch,
        "speedup": uncached / cached_epoch,
    }


def finetune_starter(stanford: Path, *, epochs: int, threads: int) -> dict:
    """``dogbreed train`` from the offline Lite0 ImageNet weights on stanford-dogs-3breeds (70/15/15)."""
    from dogbreed.train import main, parse_args

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        argv = [
            "--data", str(stanford), "--backbone", "efficientnet_lite0", "--weights", "imagenet",
            "--mode", "frozen", "--augmentation", "none", "--epochs", str(epochs), "--lr", "0.003",
            "--split-fractions", "0.7,0.15,0.15", "--seed", "0", "--batch-size", "32", "--workers", "1",
            "--threads", str(threads), "--output-dir", tmp, "--report", "false", "--patience", "0",
        ]
        started = time.perf_counter()
        result = main(parse_args(argv))
        elapsed = time.perf_counter() - started
    shown = {tmp: "OUT", str(stanford): os.path.relpath(stanford, REPO_ROOT)}
    return {"command": "dogbreed train " + " ".join(shown.get(a, a) for a in argv),
            "wall_s": elapsed, **{k: result.metrics.get(k) for k in ("val_acc1", "test_acc1", "test_acc5", "test_loss")},
            "epochs": len(result.history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (default: nproc)")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per configuration (default: 4)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default: 16)")
    parser.add_argument("--cache-images", type=int, default=48, help="photos in the frozen-backbone epoch (default: 48)")
    parser.add_argument("--finetune-epochs", type=int, default=8, help="epochs of the stanford-dogs-3breeds run (default: 8)")
    parser.add_argument("--photos", type=Path,
                        default=Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT / ".." / "shared" / "data" / "dog-photos"),
                        help="the real photos (default: $DOG_PHOTOS_DIR or ../shared/data/dog-photos)")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 1 or 1,2 (default: 1,2,3)")
    options = parser.parse_args()
    parts = {p.strip() for p in options.parts.split(",")}

    import torch

    from dogbreed.train import configure_logging, parse_args, resolve_amp
    from dogbreed.training.engine import cpu_supports_bf16

    configure_logging()
    torch.set_num_threads(options.threads)
    began = time.perf_counter()
    report: dict = {
        "machine": {"cpu": cpu_model(), "nproc": os.cpu_count(), "threads": options.threads, "torch": torch.__version__,
                    "cpu_bf16": cpu_supports_bf16(), "python": platform.python_version()},
        "date": now(),
    }
    defaults = parse_args(["--data", "unused"])
    default_amp = resolve_amp(defaults.amp, torch.device("cpu"))
    report["default_config"] = {"amp": defaults.amp, "resolves_to": str(default_amp).removeprefix("torch.") if default_amp else "fp32",
                                "channels_last": defaults.channels_last, "optimizer": f"{defaults.optimizer} (fused)"}

    if "1" in parts:
        print(f"[1/3] ResNet-50 fine-tuning steps, batch {options.batch_size} (load {load_average()})", file=sys.stderr)
        load_before = load_average()
        measured = step_throughputs(
            {"fp32": {"amp": "none", "channels_last": False},
             "default": {"amp": defaults.amp, "channels_last": defaults.channels_last}},
            steps=options.steps, batch_size=options.batch_size,
        )
        fp32, default = measured["fp32"], measured["default"]
        print(f"  fp32: {fp32['images_per_s']:.2f} img/s", file=sys.stderr)
        print(f"  default ({default['amp']} + channels_last): {default['images_per_s']:.2f} img/s", file=sys.stderr)
        report["throughput"] = {"fp32": fp32, "default": default,
                                "speedup": default["images_per_s"] / fp32["images_per_s"],
                                "load_before": load_before, "load_after": load_average(), "measured_at": now()}

    photos_root = options.photos / "stanford-dogs-3breeds"
    if photos_root.is_dir():
        from dogbreed.data import discover

        data = discover(photos_root)
        everything = data.splits["train"] + data.splits["valid"] + data.splits["test"]
        step = max(1, len(everything) // options.cache_images)
        photos = everything[::step][: options.cache_images]
        source = f"{len(photos)} photos of {photos_root.name}"
    else:
        from PIL import Image

        tmp = Path(tempfile.mkdtemp(prefix="bench-photos-"))
        photos = []
        for i in range(options.cache_images):
            path = tmp / f"{i}.jpg"
            Image.effect_noise((500, 375), 60).convert("RGB").save(path)
            photos.append((str(path), i % 3))
        source = f"{len(photos)} synthetic 500x375 JPEGs (no real photos found)"
    if "2" in parts:
        print(f"[2/3] frozen backbone, {source} (load {load_average()})", file=sys.stderr)
        load_before = load_average()
        cache = cache_speedup(photos, batch_size=options.batch_size, epochs_cached=5)
        print(f"  uncached epoch {cache['uncached_epoch_s']:.2f}s, cached epoch {cache['cached_epoch_s'] * 1000:.1f} ms, "
              f"{cache['speedup']:.0f}x", file=sys.stderr)
        report["cache"] = {**cache, "source": source, "load_before": load_before, "load_after": load_average(),
                           "measured_at": now()}

    if "3" in parts and photos_root.is_dir():
        print(f"[3/3] starter weights fine-tuned on {photos_root.name} (load {load_average()})", file=sys.stderr)
        load_before = load_average()
        report["finetune"] = {**finetune_starter(photos_root, epochs=options.finetune_epochs, threads=options.threads),
                              "load_before": load_before, "load_after": load_average(), "measured_at": now()}
        print(f"  test top-1 {report['finetune']['test_acc1']:.4f}", file=sys.stderr)
    report["total_s"] = time.perf_counter() - began

    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / "train.json"
    if previous.is_file():  # a partial run (--parts) keeps the other parts' last results
        try:
            kept = json.loads(previous.read_text())
        except json.JSONDecodeError:
            kept = {}
        for part in ("throughput", "cache", "finetune"):
            if part not in report and part in kept:
                report[part] = kept[part]
    (RESULTS / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "train.md").write_text(render(report))
    print(f"wrote {RESULTS / 'train.md'}", file=sys.stderr)


def render(report: dict) -> str:
    machine = report["machine"]
    ok = lambda good: "met" if good else "NOT met"  # noqa: E731
    lines = [
        "# Training benchmark (`bench/bench_train.py`)",
        "",
        f"{report['date']}; {machine['cpu']}, {machine['nproc']} cores, torch {machine['torch']}, "
        f"{machine['threads']} threads, CPU bf16 support: {machine['cpu_bf16']}. Total {report['total_s']:.0f} s.",
        "",
        "Load average (1/5/15 min) is shown per part: the machine is shared, and a busy machine lowers every number.",
        "",
    ]
    if machine["threads"] < (machine["nproc"] or 1):
        lines += [
            f"Run with `--threads {machine['threads']}` on {machine['nproc']} cores: with other processes busy, more torch "
            "threads than free cores makes every configuration several times slower (OpenMP threads wait on each other).",
            "",
        ]
    if "throughput" in report:
        lines += render_throughput(report["throughput"], ok)
    if "cache" in report:
        lines += render_cache(report["cache"], ok)
    if "finetune" in report:
        lines += render_finetune(report["finetune"], ok)
    return "\n".join(lines)


def render_throughput(throughput: dict, ok) -> list[str]:
    fp32, default = throughput["fp32"], throughput["default"]
    return [
        "## ResNet-50 fine-tuning throughput (224 px, batch 16, every layer training, AdamW)",
        "",
        "| configuration | median step | images/s |",
        "| --- | --- | --- |",
        f"| fp32, contiguous | {fp32['median_step_s']:.2f} s | {fp32['images_per_s']:.2f} |",
        f"| default: `--amp auto` ({default['amp']}) + `--channels-last` | {default['median_step_s']:.2f} s | "
        f"{default['images_per_s']:.2f} |",
        "",
        f"Default / fp32: **{throughput['speedup']:.1f}x** (target >= 3x: {ok(throughput['speedup'] >= 3)}). "
        f"{fp32['steps_timed']} timed steps each after one warm-up step, the two configurations alternating step by step "
        "so that both see the same load; in-memory inputs. "
        f"Load {throughput['load_before']} -> {throughput['load_after']}; measured {throughput['measured_at']}.",
        "",
    ]


def render_cache(cache: dict, ok) -> list[str]:
    return [
        "## Frozen backbone: feature cache (ResNet-50, 224 px, `--mode frozen --augmentation none`)",
        "",
        "| | seconds |",
        "| --- | --- |",
        f"| epoch running the backbone (decode + forward + head step) | {cache['uncached_epoch_s']:.2f} |",
        f"| computing the cache (once) | {cache['cache_build_s']:.2f} |",
        f"| epoch on cached features (median of 5) | {cache['cached_epoch_s']:.4f} |",
        "",
        f"Cached epoch is **{cache['speedup']:.0f}x** faster (target >= 20x: {ok(cache['speedup'] >= 20)}); "
        f"{cache['source']}. Load {cache['load_before']} -> {cache['load_after']}; measured {cache['measured_at']}.",
        "",
    ]


def render_finetune(ft: dict, ok) -> list[str]:
    return [
        "## Starter weights fine-tuned on stanford-dogs-3breeds (stratified 70/15/15, seed 0)",
        "",
        f"`{ft['command']}`",
        "",
        f"Test top-1 **{ft['test_acc1']:.4f}** (target >= 0.95: {ok(ft['test_acc1'] >= 0.95)}), "
        f"top-5 {ft['test_acc5']:.4f}, best validation top-1 {ft['val_acc1']:.4f}; {ft['epochs']} epochs in "
        f"{ft['wall_s']:.0f} s wall (features computed once). Load {ft['load_before']} -> {ft['load_after']}.",
        f"Measured {ft['measured_at']}.",
        "",
    ]


if __name__ == "__main__":
    main()
