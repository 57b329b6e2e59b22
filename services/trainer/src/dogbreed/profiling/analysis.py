"""Findings in plain language (each mirrors a SageMaker Debugger/Profiler rule) and the summary numbers of a
profiled run. Torch-free."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .records import ProfileResult, StepRecord

OUTLIER_STDS = 3.0
DATA_WAIT_WARNING = 0.20  # fraction of step time spent waiting on the loader
LOW_UTILISATION = 50.0  # percent
HIGH_CPU = 90.0


@dataclass
class Finding:
    rule: str  # SageMaker Debugger/Profiler rule it mirrors
    title: str
    triggered: bool
    message: str


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low, high = math.floor(index), math.ceil(index)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def step_outliers(steps: Sequence[StepRecord], stds: float = OUTLIER_STDS) -> tuple[list[StepRecord], float, float]:
    """Steps (the first excluded) slower than mean + ``stds`` standard deviations; with (mean, std)."""
    body = list(steps[1:]) if len(steps) > 1 else list(steps)
    durations = [s.total_s for s in body]
    if len(durations) < 2:
        return [], (durations[0] if durations else 0.0), 0.0
    mean, std = statistics.fmean(durations), statistics.pstdev(durations)
    return [s for s in body if std > 0 and s.total_s > mean + stds * std], mean, std


def analyse(result: ProfileResult) -> list[Finding]:
    steps, samples, settings = result.steps, result.samples, result.settings
    findings: list[Finding] = []
    outliers, mean, std = step_outliers(steps)
    first = steps[0].total_s if steps else 0.0

    # Step outliers (SageMaker: StepOutlier).
    if outliers:
        listed = ", ".join(f"{s.step} ({s.total_s * 1000:.0f} ms)" for s in outliers[:10])
        waits = sum(1 for s in outliers if s.data_s > s.compute_s)
        cause = (
            f"{waits} of them spent most of the time waiting for data, so the loader stalled"
            if waits
            else "they were slow while computing, e.g. memory allocation, other processes on the machine, or a garbage-collection pause"
        )
        message = f"{len(outliers)} step(s) took longer than {OUTLIER_STDS:g} standard deviations above the mean ({mean * 1000:.0f} ± {std * 1000:.0f} ms): {listed}; {cause}."
    else:
        message = f"No step took longer than mean + {OUTLIER_STDS:g} standard deviations ({mean * 1000:.0f} ± {std * 1000:.0f} ms)."
    findings.append(Finding("StepOutlier", "Step-time outliers", bool(outliers), message))

    # Initialisation (SageMaker: MaxInitializationTime, scaled to a step).
    slow_start = len(steps) > 1 and mean > 0 and first > 5 * mean and first - mean > 0.5
    findings.append(
        Finding(
            "MaxInitializationTime",
            "First step",
            slow_start,
            f"The first step took {first:.2f} s{f', {first / mean:.0f}x a typical step' if mean > 0 else ''}: "
            + ("it pays for starting the loader workers, allocating memory and warming up kernels; long runs amortise it." if slow_start else "startup cost is small."),
        )
    )

    # Data loading (SageMaker: Dataloader, IOBottleneck).
    body = steps[1:] if len(steps) > 1 else steps
    total = sum(s.total_s for s in body)
    wait_fraction = sum(s.data_s for s in body) / total if total > 0 else 0.0
    workers = settings.get("workers")
    cores = settings.get("cpu_count") or os.cpu_count() or 1
    waiting = wait_fraction > DATA_WAIT_WARNING
    if waiting:
        advice = (
            f"raise --workers (now {workers}; this machine has {cores} cores)"
            if workers is not None and workers < cores
            else "decode smaller images (pre-resize the dataset), use a cheaper augmentation, or cache features with a frozen backbone"
        )
        message = f"Training waited for the data loader {wait_fraction:.0%} of the time (after the first step): the model is starved of data; {advice}."
    else:
        message = f"Training waited for the data loader {wait_fraction:.0%} of the time: data loading keeps up with the model."
    findings.append(Finding("Dataloader", "Data loader wait vs compute", waiting, message))

    # Workers vs cores.
    if workers is not None:
        if workers == 0:
            message = "The data loader runs in the training process (--workers 0): decoding and augmentation do not overlap with compute."
            triggered = wait_fraction > DATA_WAIT_WARNING / 2
        elif workers > cores:
            message = f"{workers} data-loader workers on {cores} cores: more workers than cores only adds contention."
            triggered = True
        else:
            message = f"{workers} data-loader worker(s) on {cores} core(s)."
            triggered = False
        threads = settings.get("torch_threads")
        if threads is not None:
            message += f" PyTorch uses {threads} intra-op thread(s)."
            if workers and threads + workers > 2 * cores:
                triggered = True
                message += " Workers plus compute threads oversubscribe the CPU; lower one of them."
        findings.append(Finding("Dataloader", "Data-loader workers vs CPU cores", triggered, message))

    # Pinned memory.
    if settings.get("device", "cpu").startswith("cuda"):
        pinned = bool(settings.get("pin_memory"))
        findings.append(
            Finding(
                "Dataloader",
                "Pinned memory",
                not pinned,
                "Batches are copied from pinned memory, so host-to-GPU copies can run asynchronously."
                if pinned
                else "pin_memory is off: host-to-GPU copies are synchronous and slower; enable pin_memory in the data loader.",
            )
        )

    # CPU / GPU utilisation (SageMaker: CPUBottleneck, LowGPUUtilization, BatchSize).
    cpu = [s.cpu_percent for s in samples]
    gpu = [s.gpu_percent for s in samples if s.gpu_percent is not None]
    batch = settings.get("batch_size")
    if cpu:
        cpu_mean, cpu_p95 = statistics.fmean(cpu), _percentile(cpu, 0.95)
        if gpu:
            gpu_mean = statistics.fmean(gpu)
            bottleneck = cpu_p95 > HIGH_CPU and gpu_mean < LOW_UTILISATION
            findings.append(
                Finding(
                    "CPUBottleneck",
                    "CPU bottleneck",
                    bottleneck,
                    f"CPU utilisation averaged {cpu_mean:.0f}% (p95 {cpu_p95:.0f}%) while the GPU averaged {gpu_mean:.0f}%"
                    + (": the CPU (data loading, augmentation) limits training; add workers or pre-process the data." if bottleneck else "."),
                )
            )
            low = _percentile(gpu, 0.95) < LOW_UTILISATION
            memory = [s.gpu_memory_mb for s in samples if s.gpu_memory_mb is not None]
            total_mb = settings.get("gpu_total_memory_mb")
            memory_note = f"; peak GPU memory {max(memory):.0f} MB" + (f" of {total_mb:.0f} MB" if total_mb else "") if memory else ""
            findings.append(
                Finding(
                    "LowGPUUtilization",
                    "GPU utilisation",
                    low,
                    f"GPU utilisation averaged {gpu_mean:.0f}% (p95 {_percentile(gpu, 0.95):.0f}%){memory_note}"
                    + (f": the GPU is underused; try a larger batch size than {batch}, more data-loader workers, or mixed precision." if low else "."),
                )
            )
        else:
            device_cpu = not settings.get("device", "cpu").startswith("cuda")
            if device_cpu and cpu_mean >= HIGH_CPU:
                findings.append(
                    Finding(
                        "CPUBottleneck",
                        "CPU saturated",
                        True,
                        f"CPU utilisation averaged {cpu_mean:.0f}% (p95 {cpu_p95:.0f}%): training is compute-bound on {cores} core(s). "
                        "Mixed precision (--amp bf16 on CPUs with native bf16), a frozen backbone with cached features, smaller "
                        "images or a GPU instance are the levers.",
                    )
                )
            elif device_cpu:
                low = cpu_mean < LOW_UTILISATION
                findings.append(
                    Finding(
                        "CPUUtilization",
                        "CPU utilisation",
                        low,
                        f"CPU utilisation averaged {cpu_mean:.0f}% (p95 {cpu_p95:.0f}%) over {cores} core(s)"
                        + (f": the cores are underused; with batch size {batch} a larger batch, more intra-op threads (--threads) or more workers may help." if low else "."),
                    )
                )
            else:
                findings.append(
                    Finding(
                        "LowGPUUtilization",
                        "GPU utilisation unknown",
                        False,
                        f"CPU utilisation averaged {cpu_mean:.0f}% (p95 {cpu_p95:.0f}%); GPU utilisation needs pynvml (pip install nvidia-ml-py) to be measured.",
                    )
                )

    # Other load on the machine: step times then measure contention as much as training.
    own = [s.process_cpu_percent for s in samples if s.process_cpu_percent is not None]
    if cpu and own:
        others = statistics.fmean(cpu) - statistics.fmean(own)
        busy = others > 25.0
        findings.append(
            Finding(
                "OtherProcesses",
                "Other processes",
                busy,
                f"Training (this process and its loader workers) used {statistics.fmean(own):.0f}% of the CPU; other processes used about {max(0.0, others):.0f}%"
                + (": the machine was shared, so step times and their spread include that contention; profile again on an idle machine." if busy else "."),
            )
        )

    # Batch size sweep.
    if result.sweep:
        best = max(result.sweep, key=lambda r: r["images_per_s"])
        current = next((r for r in result.sweep if r["batch_size"] == batch), None)
        better = current is not None and best["batch_size"] != batch and best["images_per_s"] > 1.1 * current["images_per_s"]
        findings.append(
            Finding(
                "BatchSize",
                "Batch size vs throughput",
                better,
                f"Of the batch sizes tried, {best['batch_size']} trained fastest ({best['images_per_s']:.1f} images/s)"
                + (f", {best['images_per_s'] / current['images_per_s']:.1f}x batch size {batch}; scale the learning rate with the batch size if you switch." if better else "."),
            )
        )
    return findings


def summary_numbers(result: ProfileResult) -> dict:
    body = result.steps[1:] if len(result.steps) > 1 else result.steps
    total = sum(s.total_s for s in body)
    outliers, mean, std = step_outliers(result.steps)
    cpu = [s.cpu_percent for s in result.samples]
    gpu = [s.gpu_percent for s in result.samples if s.gpu_percent is not None]
    return {
        "steps": len(result.steps),
        "first_step_s": result.steps[0].total_s if result.steps else None,
        "step_mean_ms": mean * 1000,
        "step_std_ms": std * 1000,
        "step_p50_ms": _percentile([s.total_s * 1000 for s in body], 0.5) if body else None,
        "step_p95_ms": _percentile([s.total_s * 1000 for s in body], 0.95) if body else None,
        "outlier_steps": [s.step for s in outliers],
        "data_wait_fraction": sum(s.data_s for s in body) / total if total > 0 else 0.0,
        "images_per_s": sum(s.batch_size for s in body) / total if total > 0 else 0.0,
        "cpu_percent_mean": statistics.fmean(cpu) if cpu else None,
        "cpu_percent_p95": _percentile(cpu, 0.95) if cpu else None,
        "gpu_percent_mean": statistics.fmean(gpu) if gpu else None,
        "peak_rss_mb": max((s.process_rss_mb for s in result.samples), default=None),
        "peak_gpu_memory_mb": max((s.gpu_memory_mb for s in result.samples if s.gpu_memory_mb is not None), default=None),
    }
