"""``dogbreed profile``: a few training steps under ``torch.profiler`` and a report in plain language.

The report answers what SageMaker's profiler report answered for the course projects:

- step times, with the steps slower than mean + 3 standard deviations (the first step, which pays
  for initialisation, is reported on its own);
- how much of each step is spent waiting for the data loader versus computing;
- data-loader workers versus CPU cores, and pinned memory when training on a GPU;
- CPU and (when present) GPU utilisation and memory over the run;
- batch size versus utilisation (and, with ``--batch-sizes``, a short sweep of throughput);
- the operators that took the most time;

plus a Chrome trace (``trace.json``) of the profiled steps that opens in https://ui.perfetto.dev,
``chrome://tracing`` or TensorBoard's profiler plugin.

Measurement: every step is timed with wall clocks around ``next(loader)`` (data wait) and around
the forward/backward/optimizer step (compute, synchronised on a GPU); ``torch.profiler`` records
operators for a window of steps (``wait``/``warmup``/``active`` schedule) so its own overhead does
not distort the step times of the other steps; a background thread samples CPU, memory and GPU.
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import torch
from torch import nn

OUTLIER_STDS = 3.0
DATA_WAIT_WARNING = 0.20  # fraction of step time spent waiting on the loader
LOW_UTILISATION = 50.0  # percent
HIGH_CPU = 90.0


# --- measurements -------------------------------------------------------------------------------


@dataclass
class StepRecord:
    step: int
    batch_size: int
    data_s: float
    compute_s: float

    @property
    def total_s(self) -> float:
        return self.data_s + self.compute_s


@dataclass
class ResourceSample:
    t: float  # seconds since the sampler started
    cpu_percent: float  # whole machine, 0-100
    per_cpu: list[float]
    process_rss_mb: float
    memory_percent: float
    gpu_percent: float | None = None
    gpu_memory_mb: float | None = None
    process_cpu_percent: float | None = None  # this process and its data-loader workers, share of all cores


class _ProcCpu:
    """CPU utilisation from /proc/stat deltas, for systems without psutil."""

    def __init__(self):
        self._last = self._read()

    @staticmethod
    def _read() -> list[tuple[int, int]]:
        rows = []
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)
                rows.append((sum(values), idle))
        return rows

    def percent(self) -> tuple[float, list[float]]:
        now = self._read()
        out = []
        for (total, idle), (last_total, last_idle) in zip(now, self._last, strict=False):
            d_total = total - last_total
            out.append(100.0 * (1 - (idle - last_idle) / d_total) if d_total > 0 else 0.0)
        self._last = now
        return (out[0] if out else 0.0), out[1:]


def _proc_memory() -> tuple[float, float]:
    """(this process's RSS in MB, system memory used %) from /proc."""
    rss_mb = 0.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_mb = int(line.split()[1]) / 1024
    except OSError:
        pass
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0])
    except OSError:
        return rss_mb, 0.0
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    return rss_mb, (100.0 * (total - available) / total if total else 0.0)


class ResourceSampler:
    """Samples CPU, memory and GPU every ``interval`` seconds on a daemon thread (psutil or /proc)."""

    def __init__(self, interval: float = 0.2, device: torch.device | None = None, use_psutil: bool = True):
        self.interval = interval
        self.device = device if device is not None and device.type == "cuda" else None
        self.samples: list[ResourceSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._psutil = None
        if use_psutil:
            try:
                import psutil

                self._psutil = psutil
            except ImportError:
                pass
        self.source = "psutil" if self._psutil else "/proc"

    def _cpu_reader(self) -> Callable[[], tuple[float, list[float]]]:
        if self._psutil:
            ps = self._psutil
            ps.cpu_percent(percpu=True)  # prime: the first call has no interval to measure

            def read():
                per_cpu = ps.cpu_percent(percpu=True)
                return (sum(per_cpu) / len(per_cpu) if per_cpu else 0.0), per_cpu

            return read
        return _ProcCpu().percent

    def _process_cpu_reader(self) -> Callable[[], float | None]:
        """CPU used by this process and its children (loader workers), as a share of all cores."""
        cores = os.cpu_count() or 1
        if self._psutil:
            ps = self._psutil
            me = ps.Process()
            me.cpu_percent()
            children: dict[int, Any] = {}

            def read():
                total = me.cpu_percent()
                try:
                    current = me.children(recursive=True)
                except ps.Error:
                    current = []
                for child in current:
                    if child.pid not in children:
                        children[child.pid] = child
                        try:
                            child.cpu_percent()  # prime; counts from the next sample
                        except ps.Error:
                            pass
                        continue
                    try:
                        total += children[child.pid].cpu_percent()
                    except ps.Error:
                        pass
                return total / cores

            return read
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        state = {"cpu": None, "t": None}

        def read_proc():
            try:
                with open("/proc/self/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                used = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            except (OSError, IndexError, ValueError):
                return None
            now = time.perf_counter()
            last_used, last_t = state["cpu"], state["t"]
            state["cpu"], state["t"] = used, now
            if last_used is None or now <= last_t:
                return None
            return 100.0 * (used - last_used) / (now - last_t) / cores

        read_proc()
        return read_proc

    def _memory(self) -> tuple[float, float]:
        if self._psutil:
            return self._psutil.Process().memory_info().rss / 2**20, self._psutil.virtual_memory().percent
        return _proc_memory()

    def _gpu(self) -> tuple[float | None, float | None]:
        if self.device is None:
            return None, None
        memory = torch.cuda.memory_allocated(self.device) / 2**20
        try:
            utilisation = float(torch.cuda.utilization(self.device))  # needs pynvml / amdsmi
        except Exception:  # noqa: BLE001 -- no NVML/AMD SMI: utilisation unknown, memory still measured
            utilisation = None
        return utilisation, memory

    def _sample(self) -> None:
        cpu, per_cpu = self._read_cpu()
        own = self._read_process_cpu()
        rss, mem = self._memory()
        gpu, gpu_mem = self._gpu()
        self.samples.append(ResourceSample(time.perf_counter() - self._start, cpu, per_cpu, rss, mem, gpu, gpu_mem, own))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self._read_cpu = self._cpu_reader()
        self._read_process_cpu = self._process_cpu_reader()
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="dogbreed-resource-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()  # a run shorter than the interval still gets one sample (since __enter__)


# --- the profiled loop --------------------------------------------------------------------------


def default_train_step(model: nn.Module, optimizer, criterion, device: torch.device, *, autocast_dtype: torch.dtype | None = None, channels_last: bool = False):
    """One optimisation step on a batch ``(images, targets)``; returns the loss tensor."""

    def step(batch):
        images, targets = batch[0], batch[1]
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, list | tuple) else batch
    return int(first.shape[0]) if hasattr(first, "shape") else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(loader: Iterable, step: Callable[[Any], Any], steps: int, device: torch.device, on_step_end: Callable[[], None] | None = None, on_progress: Callable[[StepRecord], None] | None = None) -> list[StepRecord]:
    """Run ``steps`` steps (restarting the loader when it runs out) and time each one; ``on_progress``
    gets each step's record as it ends."""
    records: list[StepRecord] = []
    iterator = iter(loader)
    exhausted_in_a_row = 0
    while len(records) < steps:
        t0 = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            exhausted_in_a_row += 1
            if exhausted_in_a_row > 1:
                raise RuntimeError("the data loader yields no batches") from None
            iterator = iter(loader)
            continue
        exhausted_in_a_row = 0
        t1 = time.perf_counter()
        step(batch)
        _sync(device)
        t2 = time.perf_counter()
        records.append(StepRecord(len(records), _batch_size(batch), t1 - t0, t2 - t1))
        if on_step_end is not None:
            on_step_end()
        if on_progress is not None:
            on_progress(records[-1])
    return records


class StepProgress:
    """``profile: step 7/20, 412 ms/step, ETA 5 s`` on one stderr line (redrawn on a terminal), then a
    closing line; ``on_progress`` of :func:`run_steps`."""

    def __init__(self, label: str, total: int, stream=None, redraw: bool | None = None):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.redraw = self.stream.isatty() if redraw is None else redraw
        self.done, self.seconds = 0, 0.0

    def __call__(self, record: StepRecord) -> None:
        self.done += 1
        self.seconds += record.total_s
        if self.redraw:
            per_step = self.seconds / self.done
            eta = f", ETA {(self.total - self.done) * per_step:.0f} s" if self.done < self.total else ""
            self.stream.write(f"\r{self.label}: step {self.done}/{self.total}, {per_step * 1000:.0f} ms/step{eta}\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        if self.redraw:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"{self.label}: {self.done} steps in {self.seconds:.1f} s\n")
        self.stream.flush()


@dataclass
class ProfileSchedule:
    wait: int = 1
    warmup: int = 1
    active: int = 5

    @classmethod
    def for_steps(cls, steps: int, active: int | None = None) -> ProfileSchedule:
        """Skip the first step (initialisation), warm up one, record up to ``active`` (default: the rest, at most 10)."""
        if steps < 3:
            return cls(wait=0, warmup=0, active=max(1, steps))
        available = steps - 2
        return cls(wait=1, warmup=1, active=max(1, min(available, active if active else 10)))


def top_operators(profiler, limit: int = 15) -> list[dict]:
    """The operators with the most self time (device time first when there is any)."""
    rows = []
    for event in profiler.key_averages():
        if event.key.startswith("ProfilerStep"):
            continue  # the whole step, not an operator
        device_us = getattr(event, "self_device_time_total", None)
        if device_us is None:
            device_us = getattr(event, "self_cuda_time_total", 0)
        rows.append(
            {
                "name": event.key,
                "calls": int(event.count),
                "self_cpu_ms": event.self_cpu_time_total / 1000,
                "cpu_total_ms": event.cpu_time_total / 1000,
                "self_device_ms": (device_us or 0) / 1000,
            }
        )
    has_device = any(r["self_device_ms"] > 0 for r in rows)
    rows.sort(key=lambda r: r["self_device_ms"] if has_device else r["self_cpu_ms"], reverse=True)
    return rows[:limit]


@dataclass
class ProfileResult:
    steps: list[StepRecord]
    samples: list[ResourceSample]
    operators: list[dict]
    settings: dict
    sweep: list[dict] = field(default_factory=list)
    trace_path: Path | None = None
    sampler_source: str = ""


def profile_steps(
    loader: Iterable,
    step: Callable[[Any], Any],
    *,
    steps: int,
    device: torch.device,
    output_dir: str | os.PathLike,
    settings: dict,
    active_steps: int | None = None,
    sample_interval: float = 0.2,
    on_progress: Callable[[StepRecord], None] | None = None,
) -> ProfileResult:
    """Run ``steps`` training steps with the profiler over a window of them; write ``trace.json``."""
    from torch.profiler import ProfilerActivity, profile, schedule

    if steps < 1:
        raise ValueError("steps must be >= 1")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trace_path = output_dir / "trace.json"
    plan = ProfileSchedule.for_steps(steps, active_steps)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    else:
        # Without a GPU, libkineto logs "ERROR ... gpuGetDeviceCount failed" on stderr: noise, not a fault.
        os.environ.setdefault("KINETO_LOG_LEVEL", "6")

    def export(prof) -> None:
        prof.export_chrome_trace(str(trace_path))

    with ResourceSampler(sample_interval, device) as sampler:
        with profile(
            activities=activities,
            schedule=schedule(wait=plan.wait, warmup=plan.warmup, active=plan.active, repeat=1),
            on_trace_ready=export,
            record_shapes=False,
            profile_memory=False,
        ) as prof:
            records = run_steps(loader, step, steps, device, on_step_end=prof.step, on_progress=on_progress)
    operators = top_operators(prof)
    return ProfileResult(
        steps=records,
        samples=sampler.samples,
        operators=operators,
        settings={**settings, "profiled_steps": f"{plan.wait + plan.warmup}..{plan.wait + plan.warmup + plan.active - 1}"},
        trace_path=trace_path if trace_path.exists() else None,
        sampler_source=sampler.source,
    )


def measure_batch_size(loader: Iterable, step: Callable[[Any], Any], *, steps: int, device: torch.device, batch_size: int | None = None, sample_interval: float = 0.2, on_progress: Callable[[StepRecord], None] | None = None) -> dict:
    """Throughput and utilisation for one batch size (no profiler), skipping the first step."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with ResourceSampler(sample_interval, device) as sampler:
        records = run_steps(loader, step, steps + 1, device, on_progress=on_progress)
    timed = records[1:] or records
    images = sum(r.batch_size for r in timed)
    seconds = sum(r.total_s for r in timed)
    cpu = [s.cpu_percent for s in sampler.samples]
    gpu = [s.gpu_percent for s in sampler.samples if s.gpu_percent is not None]
    return {
        "batch_size": batch_size if batch_size is not None else max(r.batch_size for r in timed),
        "images_per_s": images / seconds if seconds > 0 else 0.0,
        "step_s": seconds / len(timed),
        "data_wait_fraction": sum(r.data_s for r in timed) / seconds if seconds > 0 else 0.0,
        "cpu_percent": statistics.fmean(cpu) if cpu else None,
        "gpu_percent": statistics.fmean(gpu) if gpu else None,
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


# --- analysis: findings in plain language -------------------------------------------------------


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


# --- report -------------------------------------------------------------------------------------


def _plot_steps(steps: Sequence[StepRecord], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outliers, mean, std = step_outliers(steps)
    outlier_ids = {s.step for s in outliers}
    fig, (ax_steps, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    xs = [s.step for s in steps]
    data_ms = [s.data_s * 1000 for s in steps]
    compute_ms = [s.compute_s * 1000 for s in steps]
    ax_steps.bar(xs, data_ms, color="#e39b2d", label="waiting for data")
    ax_steps.bar(xs, compute_ms, bottom=data_ms, color="#3a78b5", label="compute")
    for s in steps:
        if s.step in outlier_ids:
            ax_steps.annotate("outlier", (s.step, s.total_s * 1000), ha="center", va="bottom", color="#c0392b", fontsize=8)
    if std > 0:
        ax_steps.axhline((mean + OUTLIER_STDS * std) * 1000, color="#c0392b", linestyle="--", linewidth=1, label=f"mean + {OUTLIER_STDS:g}σ")
    ax_steps.set_xlabel("step")
    ax_steps.set_ylabel("ms")
    ax_steps.set_title("Step time: data wait vs compute")
    ax_steps.legend(fontsize=8)
    body = [s.total_s * 1000 for s in (steps[1:] if len(steps) > 1 else steps)]
    ax_hist.hist(body, bins=min(20, max(5, len(body) // 2)), color="#3a78b5")
    ax_hist.axvline(mean * 1000, color="black", linewidth=1, label="mean")
    if std > 0:
        ax_hist.axvline((mean + OUTLIER_STDS * std) * 1000, color="#c0392b", linestyle="--", linewidth=1, label=f"mean + {OUTLIER_STDS:g}σ")
    ax_hist.set_xlabel("step time (ms), first step excluded")
    ax_hist.set_ylabel("steps")
    ax_hist.set_title("Distribution")
    ax_hist.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_utilisation(samples: Sequence[ResourceSample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_util, ax_mem) = plt.subplots(1, 2, figsize=(11, 3.6))
    ts = [s.t for s in samples]
    ax_util.plot(ts, [s.cpu_percent for s in samples], label="CPU (all cores)", color="#3a78b5")
    if samples and samples[0].per_cpu and len(samples[0].per_cpu) <= 16:
        for core in range(len(samples[0].per_cpu)):
            ax_util.plot(ts, [s.per_cpu[core] if core < len(s.per_cpu) else 0 for s in samples], linewidth=0.6, alpha=0.4, color="#3a78b5")
    if any(s.process_cpu_percent is not None for s in samples):
        ax_util.plot(ts, [s.process_cpu_percent if s.process_cpu_percent is not None else float("nan") for s in samples], label="CPU used by training", color="#e39b2d")
    if any(s.gpu_percent is not None for s in samples):
        ax_util.plot(ts, [s.gpu_percent if s.gpu_percent is not None else float("nan") for s in samples], label="GPU", color="#27ae60")
    ax_util.set_ylim(0, 105)
    ax_util.set_xlabel("seconds")
    ax_util.set_ylabel("%")
    ax_util.set_title("Utilisation (thin lines: single cores)")
    ax_util.legend(fontsize=8)
    ax_mem.plot(ts, [s.process_rss_mb for s in samples], label="process RSS (MB)", color="#8e44ad")
    if any(s.gpu_memory_mb is not None for s in samples):
        ax_mem.plot(ts, [s.gpu_memory_mb if s.gpu_memory_mb is not None else float("nan") for s in samples], label="GPU allocated (MB)", color="#27ae60")
    ax_mem.set_xlabel("seconds")
    ax_mem.set_ylabel("MB")
    ax_mem.set_title("Memory")
    ax_mem.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_sweep(sweep: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    sizes = [r["batch_size"] for r in sweep]
    ax.plot(sizes, [r["images_per_s"] for r in sweep], marker="o", color="#3a78b5", label="images/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("images/s")
    util_key = "gpu_percent" if any(r.get("gpu_percent") is not None for r in sweep) else "cpu_percent"
    twin = ax.twinx()
    twin.plot(sizes, [r.get(util_key) or float("nan") for r in sweep], marker="s", color="#e39b2d", label=f"{util_key.split('_')[0].upper()} %")
    twin.set_ylim(0, 105)
    twin.set_ylabel("utilisation %")
    ax.set_title("Batch size vs throughput and utilisation")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.finding{margin:.5em 0;padding:.5em .8em;border-left:4px solid #27ae60;background:#f6fbf7}
.finding.triggered{border-color:#e67e22;background:#fdf6ee}.rule{color:#777;font-size:.85em}
img{max-width:100%}code{background:#f4f4f4;padding:0 .2em}
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f'<td class="num">{value:,.2f}</td>'
        if isinstance(value, int):
            return f'<td class="num">{value}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


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


def write_report(result: ProfileResult, output_dir: str | os.PathLike) -> Path:
    """Write report.html, its PNG plots and profile.json (all numbers) into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    findings = analyse(result)
    numbers = summary_numbers(result)

    plots = []
    if result.steps:
        _plot_steps(result.steps, output_dir / "step_times.png")
        plots.append(("step_times.png", "Per-step time split into data wait and compute; the red line marks the outlier threshold."))
    if result.samples:
        _plot_utilisation(result.samples, output_dir / "utilisation.png")
        plots.append(("utilisation.png", f"CPU{', GPU' if numbers['gpu_percent_mean'] is not None else ''} utilisation and memory over the run (sampled with {result.sampler_source})."))
    if result.sweep:
        _plot_sweep(result.sweep, output_dir / "batch_sizes.png")
        plots.append(("batch_sizes.png", "Throughput and utilisation for each batch size tried."))

    (output_dir / "profile.json").write_text(
        json.dumps(
            {
                "settings": result.settings,
                "summary": numbers,
                "findings": [asdict(f) for f in findings],
                "steps": [{**asdict(s), "total_s": s.total_s} for s in result.steps],
                "operators": result.operators,
                "batch_size_sweep": result.sweep,
            },
            indent=2,
            default=str,
        )
    )

    triggered = [f for f in findings if f.triggered]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>dogbreed profiler report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Training profiler report</h1>",
        f"<p>{len(result.steps)} training steps; {len(triggered)} of {len(findings)} checks found something to look at.</p>",
        "<h2>Findings</h2>",
    ]
    for f in sorted(findings, key=lambda f: not f.triggered):
        status = "check" if f.triggered else "ok"
        parts.append(
            f"<div class='finding{' triggered' if f.triggered else ''}'><b>{html.escape(f.title)}</b> "
            f"<span class='rule'>[{html.escape(f.rule)}: {status}]</span><br>{html.escape(f.message)}</div>"
        )
    parts.append("<h2>Summary</h2>")
    shown = {
        "mean step time (ms, first step excluded)": numbers["step_mean_ms"],
        "standard deviation (ms)": numbers["step_std_ms"],
        "median / p95 step time (ms)": f"{numbers['step_p50_ms'] or 0:.1f} / {numbers['step_p95_ms'] or 0:.1f}",
        "first step (ms)": "-" if numbers["first_step_s"] is None else numbers["first_step_s"] * 1000,
        "time waiting for data": f"{numbers['data_wait_fraction']:.1%}",
        "throughput (images/s)": numbers["images_per_s"],
        "CPU utilisation mean / p95 (%)": "-" if numbers["cpu_percent_mean"] is None else f"{numbers['cpu_percent_mean']:.0f} / {numbers['cpu_percent_p95']:.0f}",
        "GPU utilisation mean (%)": "-" if numbers["gpu_percent_mean"] is None else f"{numbers['gpu_percent_mean']:.0f}",
        "peak process memory (MB)": numbers["peak_rss_mb"] if numbers["peak_rss_mb"] is not None else "-",
        "peak GPU memory (MB)": numbers["peak_gpu_memory_mb"] if numbers["peak_gpu_memory_mb"] is not None else "-",
    }
    parts.append(_table(["measure", "value"], shown.items()))
    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], ((k, v) for k, v in sorted(result.settings.items()))))
    for name, caption in plots:
        parts.append(f"<h2>{html.escape(caption.split(';')[0].split('.')[0])}</h2><img src='{name}' alt='{html.escape(caption)}'><p>{html.escape(caption)}</p>")
    if result.sweep:
        parts.append("<h2>Batch size sweep</h2>")

        def missing(value):
            return "-" if value is None else value

        sweep_rows = [
            (r["batch_size"], r["images_per_s"], r["step_s"] * 1000, f"{r['data_wait_fraction']:.0%}",
             missing(r["cpu_percent"]), missing(r["gpu_percent"]), missing(r["peak_gpu_memory_mb"]))
            for r in result.sweep
        ]  # fmt: skip
        parts.append(_table(["batch size", "images/s", "step (ms)", "data wait", "CPU %", "GPU %", "peak GPU MB"], sweep_rows))
    parts.append(f"<h2>Top operators (profiled steps {html.escape(str(result.settings.get('profiled_steps', '')))})</h2>")
    parts.append(
        _table(
            ["operator", "calls", "self CPU (ms)", "CPU total (ms)", "self GPU (ms)"],
            ((r["name"], r["calls"], r["self_cpu_ms"], r["cpu_total_ms"], r["self_device_ms"]) for r in result.operators),
        )
    )
    if result.trace_path is not None:
        parts.append(
            f"<h2>Trace</h2><p><code>{html.escape(result.trace_path.name)}</code> holds a Chrome trace of the profiled steps: open it in "
            "<a href='https://ui.perfetto.dev'>Perfetto</a> (Open trace file), <code>chrome://tracing</code>, or TensorBoard's profiler plugin.</p>"
        )
    parts.append("</body></html>")
    report = output_dir / "report.html"
    tmp = output_dir / "report.html.tmp"
    tmp.write_text("\n".join(parts))
    os.replace(tmp, report)
    return report


# --- the command: real training steps of `dogbreed train` ---------------------------------------


class ProfileError(click.ClickException):
    """Bad input to ``dogbreed profile``: one line, exit code 2 (like ``dogbreed train``)."""

    exit_code = 2


@dataclass
class TrainingSetup:
    """What one training step of ``dogbreed train`` needs, built the way ``train.main`` builds it."""

    loader_for: Callable[[int], Iterable]  # batch size -> training data loader
    step: Callable[[Any], Any]
    device: torch.device
    settings: dict


def build_training_setup(train_argv: Sequence[str]) -> TrainingSetup:
    from dogbreed import train
    from dogbreed.data import ImageDataset
    from dogbreed.models import NORMALISATION, apply_trainable, backbone_stages, create_model, set_train_mode, trainable_depth
    from dogbreed.presets import make_presets
    from dogbreed.sagemaker_env import DistributedEnv

    args = train.resolve_args(train.parse_args(list(train_argv)))
    dist_env = DistributedEnv()  # one process: profile a single worker of a distributed job
    device = train.resolve_device(args.device, dist_env)
    train.configure_threads(args.threads)
    data = train.load_data(args, dist_env)
    torch.manual_seed(args.seed)
    model = create_model(args.backbone, data.num_classes, args.weights, progress=sys.stderr.isatty())
    normalisation = NORMALISATION[args.backbone]
    train_preset, _ = make_presets(augmentation=args.augmentation, crop_size=args.image_size, resize_size=args.resize_size, mean=normalisation[0], std=normalisation[1])
    dataset = ImageDataset(data.splits["train"], train_preset)
    workers = train.default_workers(device, dist_env) if args.workers is None else args.workers
    depth = trainable_depth(args.mode, 0, num_stages=len(backbone_stages(model)), unfreeze_depth=args.unfreeze_depth, freeze_epochs=args.freeze_epochs, unfreeze_every=args.unfreeze_every)
    apply_trainable(model, depth)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    set_train_mode(model, depth)
    optimizer = train.build_optimizer(model, args)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    amp_dtype = train.resolve_amp(args.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    ctx = train.StepContext(device=device, amp_dtype=amp_dtype, scaler=scaler, channels_last=args.channels_last, clip_grad_norm=args.clip_grad_norm, num_classes=data.num_classes)

    def step(batch):
        # Exactly the trainer's step: train_one_epoch over a single batch.
        return train.train_one_epoch(model, criterion, optimizer, [batch], 1, ctx)

    def loader_for(batch_size: int):
        from torch.utils.data import RandomSampler

        generator = torch.Generator().manual_seed(args.seed)
        return train.make_loader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=generator), workers=workers, device=device)

    settings = {
        "device": str(device),
        "backbone": args.backbone,
        "mode": f"{args.mode} ({depth} of {len(backbone_stages(model))} backbone stages training)",
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "augmentation": args.augmentation,
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
        "channels_last": args.channels_last,
        "workers": workers,
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "pin_memory": device.type == "cuda",
        "train_images": len(dataset),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        settings["gpu"] = properties.name
        settings["gpu_total_memory_mb"] = properties.total_memory / 2**20
    return TrainingSetup(loader_for=loader_for, step=step, device=device, settings=settings)


def parse_batch_sizes(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        sizes = sorted({int(v) for v in value.replace(" ", "").split(",") if v})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or sizes[0] < 1:
        raise click.BadParameter("batch sizes must be positive integers")
    return sizes


@click.command("profile", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--steps", default=20, show_default=True, type=click.IntRange(min=1), help="Training steps to run and time.")
@click.option("--active-steps", default=10, show_default=True, type=click.IntRange(min=1), help="Steps recorded by torch.profiler (after 1 skipped and 1 warm-up step).")
@click.option("--output-dir", default="profile", show_default=True, type=click.Path(file_okay=False), help="Where report.html, its plots, profile.json and trace.json go.")
@click.option("--batch-sizes", help="Also time a few steps at each of these batch sizes, e.g. 8,16,32 (no profiler). Default: none.")
@click.option("--sweep-steps", default=5, show_default=True, type=click.IntRange(min=1), help="Timed steps per batch size of --batch-sizes (after one warm-up step).")
@click.option("--sample-interval", default=0.2, show_default=True, type=click.FloatRange(min=0.01), help="Seconds between CPU/GPU/memory samples.")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def profile_command(steps, active_steps, output_dir, batch_sizes, sweep_steps, sample_interval, train_args):
    """Profile N training steps of `dogbreed train` and write an HTML report with findings.

    Every other option goes to `dogbreed train` (e.g. --data DIR --backbone resnet50 --batch-size 32
    --workers 4); the steps are the trainer's own. Prints the report's path.
    """
    from dogbreed import train

    train.configure_logging()
    sizes = parse_batch_sizes(batch_sizes)
    argv = list(train_args)
    if "--output-dir" in argv:
        raise ProfileError("--output-dir is the report folder of dogbreed profile; it is not passed to dogbreed train")
    try:
        setup = build_training_setup(argv)
    except SystemExit as exc:  # argparse already printed the one-line error
        raise click.exceptions.Exit(exc.code if isinstance(exc.code, int) else 2) from None
    except train.USER_ERRORS as exc:
        raise ProfileError(str(exc)) from None
    out = Path(output_dir)
    click.echo(f"profiling {steps} training steps on {setup.device} (batch size {setup.settings['batch_size']})", err=True)
    progress = StepProgress("profile", steps)
    result = profile_steps(
        setup.loader_for(setup.settings["batch_size"]), setup.step, steps=steps, device=setup.device, output_dir=out,
        settings=setup.settings, active_steps=active_steps, sample_interval=sample_interval, on_progress=progress,
    )  # fmt: skip
    progress.finish()
    for size in sizes:
        progress = StepProgress(f"batch size {size}", sweep_steps + 1)
        result.sweep.append(measure_batch_size(setup.loader_for(size), setup.step, steps=sweep_steps, device=setup.device, batch_size=size, sample_interval=sample_interval, on_progress=progress))
        progress.finish()
    report = write_report(result, out)
    for finding in analyse(result):
        if finding.triggered:
            click.echo(f"CHECK {finding.title}: {finding.message}", err=True)
    click.echo(str(report))
