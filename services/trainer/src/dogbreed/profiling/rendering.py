"""The report of a profiled run: ``report.html``, its PNG plots (matplotlib, imported when drawing) and
``profile.json`` with every number. Torch-free."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .analysis import OUTLIER_STDS, analyse, step_outliers, summary_numbers
from .records import ProfileResult, ResourceSample, StepRecord


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
