"""Running training steps and measuring them: wall clocks around the data wait and the compute of every
step (synchronised on a GPU), ``torch.profiler`` over a window of steps (``wait``/``warmup``/``active``) so
its overhead does not distort the other steps, and a background thread sampling CPU, memory and GPU."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .records import ProfileResult, ResourceSample, StepRecord


# --- resources ----------------------------------------------------------------------------------


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
