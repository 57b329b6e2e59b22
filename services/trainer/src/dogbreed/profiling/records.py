"""What ``dogbreed profile`` measures: one record per training step, resource samples, a run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass
class ProfileResult:
    steps: list[StepRecord]
    samples: list[ResourceSample]
    operators: list[dict]
    settings: dict
    sweep: list[dict] = field(default_factory=list)
    trace_path: Path | None = None
    sampler_source: str = ""
