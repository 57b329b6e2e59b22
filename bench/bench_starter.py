"""Benchmark the no-training starter model: packaging time, artifact size, accuracy on the real photos.

    python bench/bench_starter.py [--threads 2] [--photos ../shared/data/dog-photos]

Writes bench/results/starter.json and bench/results/starter.md.

- Packaging: `dogbreed package --pretrained imagenet-dogs` (offline EfficientNet-Lite0) wall time and
  the size of model.tar.gz.
- Accuracy: `dogbreed evaluate`'s numbers (top-1/top-5 among the 118 ImageNet dog breeds) on
  stanford-dogs-3breeds (all 538 photos) and on udacity-dogimages-test (the folders whose breed is an
  ImageNet class), with the evaluation throughput (decode + preprocess + eager fp32 forward).
- Dog detector: share of mixed-pets photos where `is_dog` (dog probability >= 0.5) is right.
- Model-only latency: eager fp32 forward pass at batch 1 and 8 (median of repeated runs).
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

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
NOT_DOGS = ("cat_", "fox_squirrel", "gecko", "great_horned_owl", "polar_bear", "skunk", "Rabbit")


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT / ".." / "shared" / "data" / "dog-photos"),
                        help="the real photos (default: $DOG_PHOTOS_DIR or ../shared/data/dog-photos)")
    args = parser.parse_args()

    import torch
    from PIL import Image

    from dogbreed.artifact import starter_model, write_artifact
    from dogbreed.evaluation import write_report
    from dogbreed.serving.loading import load_model

    torch.set_num_threads(args.threads)
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model, metadata = starter_model()
        artifact = write_artifact(model, metadata, Path(tmp) / "model")
        results["package_seconds"] = round(time.perf_counter() - started, 2)
        results["artifact_mb"] = round(artifact.stat().st_size / 2**20, 1)
        loaded = load_model(artifact)

        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224)
            results[f"forward_ms_batch{batch}"] = round(median_ms(lambda x=x: loaded.predict_proba(x), 10), 1)

        for name, split in (("stanford-dogs-3breeds", "all"), ("udacity-dogimages-test", "all")):
            folder = args.photos / name
            if not folder.is_dir():
                continue
            out = Path(tmp) / f"report-{name}"
            write_report(loaded, folder, out, split=split, batch_size=32, num_workers=1)
            metrics = json.loads((out / "metrics.json").read_text())
            results[name] = {
                "images": metrics["images"], "breeds": metrics["breeds_evaluated"], "top1": round(metrics["top1"], 4),
                "top5": round(metrics["top5"], 4), "images_per_second": round(metrics["images_per_second"], 1),
                "unmatched_folders": len(metrics["unmapped_folders"]),
            }

        pets = args.photos / "mixed-pets"
        if pets.is_dir():
            paths = sorted(pets.glob("*.jpg"))
            images = []
            for path in paths:
                with Image.open(path) as image:
                    images.append(loaded.preset(image))
            _, dog_prob = loaded.predict_proba(torch.stack(images))
            right = [(p >= 0.5) == (not path.name.startswith(NOT_DOGS)) for p, path in zip(dog_prob.tolist(), paths, strict=True)]
            results["mixed_pets_is_dog_accuracy"] = round(sum(right) / len(right), 4)
            results["mixed_pets_photos"] = len(right)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "starter.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Starter model (EfficientNet-Lite0, ImageNet dog classes, no training)",
        "",
        f"Machine: {results['machine']}, torch {results['torch']}, {args.threads} threads. Written by bench/bench_starter.py.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| `dogbreed package --pretrained imagenet-dogs` | {results['package_seconds']} s, model.tar.gz {results['artifact_mb']} MB |",
        f"| eager fp32 forward, batch 1 | {results['forward_ms_batch1']} ms |",
        f"| eager fp32 forward, batch 8 | {results['forward_ms_batch8']} ms ({results['forward_ms_batch8'] / 8:.1f} ms/image) |",
    ]
    for name in ("stanford-dogs-3breeds", "udacity-dogimages-test"):
        if name in results:
            r = results[name]
            lines.append(
                f"| {name}: top-1 / top-5 ({r['images']} photos, {r['breeds']} breeds) | {r['top1']:.3f} / {r['top5']:.3f} "
                f"({r['images_per_second']} img/s end to end; {r['unmatched_folders']} folders not ImageNet breeds) |"
            )
    if "mixed_pets_is_dog_accuracy" in results:
        lines.append(f"| mixed-pets: is_dog right | {results['mixed_pets_is_dog_accuracy']:.3f} of {results['mixed_pets_photos']} photos |")
    lines += ["", "Timings depend on what else runs on the machine; the accuracy figures do not."]
    (RESULTS / "starter.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
