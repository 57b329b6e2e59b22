"""`dogbreed profile`: the findings from synthetic measurements, the sampler, and the real command."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dogbreed.cli import main as dogbreed_cli
from dogbreed.profiling import analysis, measurement, rendering
from dogbreed.profiling.analysis import Finding, analyse
from dogbreed.profiling.records import ProfileResult, ResourceSample, StepRecord

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def steps_of(durations_ms, data_ms=None, batch_size=8):
    data_ms = data_ms or [0.0] * len(durations_ms)
    return [StepRecord(i, batch_size, d / 1000, (t - d) / 1000) for i, (t, d) in enumerate(zip(durations_ms, data_ms, strict=True))]


def samples_of(cpu, own=None, gpu=None, gpu_mem=None):
    return [
        ResourceSample(t=i * 0.2, cpu_percent=c, per_cpu=[c, c], process_rss_mb=500.0, memory_percent=30.0,
                       gpu_percent=None if gpu is None else gpu[i], gpu_memory_mb=None if gpu_mem is None else gpu_mem[i],
                       process_cpu_percent=None if own is None else own[i])
        for i, c in enumerate(cpu)
    ]  # fmt: skip


def result(steps, samples=(), **settings):
    base = {"device": "cpu", "workers": 4, "cpu_count": 8, "batch_size": 8, "torch_threads": 4}
    return ProfileResult(steps=steps, samples=list(samples), operators=[], settings={**base, **settings})


def by_title(findings: list[Finding]) -> dict[str, Finding]:
    return {f.title: f for f in findings}


# ---- findings from synthetic measurements ------------------------------------------------------


def test_step_outliers_exclude_the_first_step():
    steps = steps_of([5000] + [100] * 30 + [900] + [100] * 10)
    outliers, mean, std = analysis.step_outliers(steps)
    assert [s.step for s in outliers] == [31]
    assert mean == pytest.approx((40 * 100 + 900) / 41 / 1000)
    found = by_title(analyse(result(steps)))["Step-time outliers"]
    assert found.triggered
    assert "1 step(s) took longer than 3 standard deviations above the mean" in found.message
    assert "31 (900 ms)" in found.message and "slow while computing" in found.message
    first = by_title(analyse(result(steps)))["First step"]
    assert first.triggered and first.message.startswith("The first step took 5.00 s, 42x a typical step")


def test_steady_steps_have_no_outliers():
    found = by_title(analyse(result(steps_of([300] + [100, 101, 99, 100] * 5))))
    assert not found["Step-time outliers"].triggered
    assert not found["First step"].triggered


def test_outlier_waiting_for_data_blames_the_loader():
    steps = steps_of([100] * 30 + [2000] + [100] * 5, data_ms=[1] * 30 + [1900] + [1] * 5)
    assert "1 of them spent most of the time waiting for data" in by_title(analyse(result(steps)))["Step-time outliers"].message


def test_data_loader_starvation_suggests_more_workers():
    steps = steps_of([100] * 10, data_ms=[60] * 10)
    found = by_title(analyse(result(steps, workers=2, cpu_count=8)))["Data loader wait vs compute"]
    assert found.triggered
    assert found.message == (
        "Training waited for the data loader 60% of the time (after the first step): the model is starved of data; "
        "raise --workers (now 2; this machine has 8 cores)."
    )
    fed = by_title(analyse(result(steps_of([100] * 10, data_ms=[5] * 10))))["Data loader wait vs compute"]
    assert not fed.triggered and "5% of the time" in fed.message


@pytest.mark.parametrize(
    ("workers", "threads", "cores", "triggered", "text"),
    [
        (0, 2, 2, True, "runs in the training process (--workers 0)"),
        (16, 2, 8, True, "16 data-loader workers on 8 cores: more workers than cores"),
        (4, 8, 4, True, "oversubscribe the CPU"),
        (2, 4, 8, False, "2 data-loader worker(s) on 8 core(s). PyTorch uses 4 intra-op thread(s)."),
    ],
)
def test_workers_vs_cores(workers, threads, cores, triggered, text):
    steps = steps_of([100] * 6, data_ms=[15] * 6)
    found = by_title(analyse(result(steps, workers=workers, torch_threads=threads, cpu_count=cores)))["Data-loader workers vs CPU cores"]
    assert found.triggered is triggered
    assert text in found.message


def test_gpu_findings():
    steps = steps_of([100] * 10)
    idle_gpu = samples_of([40] * 10, gpu=[20] * 10, gpu_mem=[1000] * 10)
    found = by_title(analyse(result(steps, idle_gpu, device="cuda:0", pin_memory=False, gpu_total_memory_mb=16000, batch_size=16)))
    assert found["Pinned memory"].triggered
    assert found["GPU utilisation"].triggered
    assert found["GPU utilisation"].message == (
        "GPU utilisation averaged 20% (p95 20%); peak GPU memory 1000 MB of 16000 MB: the GPU is underused; "
        "try a larger batch size than 16, more data-loader workers, or mixed precision."
    )
    assert not found["CPU bottleneck"].triggered
    starving = samples_of([99] * 10, gpu=[30] * 10)
    found = by_title(analyse(result(steps, starving, device="cuda:0", pin_memory=True)))
    assert found["CPU bottleneck"].triggered and not found["Pinned memory"].triggered
    busy = samples_of([50] * 10, gpu=[95] * 10)
    assert not by_title(analyse(result(steps, busy, device="cuda:0", pin_memory=True)))["GPU utilisation"].triggered


def test_cpu_findings():
    steps = steps_of([100] * 10)
    assert by_title(analyse(result(steps, samples_of([98] * 10))))["CPU saturated"].triggered
    idle = by_title(analyse(result(steps, samples_of([20] * 10), batch_size=4)))["CPU utilisation"]
    assert idle.triggered and "with batch size 4 a larger batch" in idle.message


def test_other_processes_on_the_machine():
    steps = steps_of([100] * 10)
    shared = by_title(analyse(result(steps, samples_of([100] * 10, own=[30] * 10))))["Other processes"]
    assert shared.triggered and "other processes used about 70%" in shared.message
    alone = by_title(analyse(result(steps, samples_of([60] * 10, own=[55] * 10))))["Other processes"]
    assert not alone.triggered


def test_batch_size_sweep_finding():
    r = result(steps_of([100] * 5), batch_size=8)
    r.sweep = [{"batch_size": 8, "images_per_s": 100.0}, {"batch_size": 32, "images_per_s": 180.0}]
    found = by_title(analyse(r))["Batch size vs throughput"]
    assert found.triggered
    assert found.message == "Of the batch sizes tried, 32 trained fastest (180.0 images/s), 1.8x batch size 8; scale the learning rate with the batch size if you switch."


# ---- sampling ----------------------------------------------------------------------------------


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


@pytest.mark.parametrize("use_psutil", [True, False])
def test_resource_sampler(use_psutil):
    if use_psutil:
        pytest.importorskip("psutil")
    with measurement.ResourceSampler(0.05, use_psutil=use_psutil) as sampler:
        # Work until the sampler thread has taken 3 samples (a loaded CI machine may schedule it late).
        deadline = time.monotonic() + 20
        while len(sampler.samples) < 3 and time.monotonic() < deadline:
            busy(0.1)
    assert sampler.source == ("psutil" if use_psutil else "/proc")
    assert len(sampler.samples) >= 3
    for s in sampler.samples:
        assert 0 <= s.cpu_percent <= 100
        assert s.process_rss_mb > 10
        assert 0 < s.memory_percent < 100
        assert s.gpu_percent is None and s.gpu_memory_mb is None
    own = [s.process_cpu_percent for s in sampler.samples if s.process_cpu_percent is not None]
    # A busy loop keeps (most of) one core busy.
    assert own and max(own) > 100 / (len(sampler.samples[0].per_cpu) or 1) / 4


# ---- profiling a real (tiny) training loop -----------------------------------------------------


def tiny_training():
    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(48, 3, 16, 16), torch.randint(0, 3, (48,)))
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = measurement.default_train_step(model, optimizer, nn.CrossEntropyLoss(), torch.device("cpu"))
    return dataset, model, step


def test_profile_steps_writes_trace_and_report(tmp_path):
    dataset, model, step = tiny_training()
    before = model[0].weight.detach().clone()
    loader = DataLoader(dataset, batch_size=8)  # 6 batches: the loader restarts once
    settings = {"device": "cpu", "workers": 0, "cpu_count": 2, "batch_size": 8, "torch_threads": torch.get_num_threads()}
    r = measurement.profile_steps(loader, step, steps=9, device=torch.device("cpu"), output_dir=tmp_path, settings=settings, active_steps=4, sample_interval=0.05)
    assert len(r.steps) == 9 and all(s.batch_size == 8 for s in r.steps)
    assert not torch.equal(before, model[0].weight)  # the steps trained
    assert r.settings["profiled_steps"] == "2..5"
    names = {op["name"] for op in r.operators}
    assert "aten::convolution_backward" in names
    assert "ProfilerStep*" not in names

    trace = json.loads(r.trace_path.read_text())
    step_events = {e["name"] for e in trace["traceEvents"] if e.get("name", "").startswith("ProfilerStep#")}
    assert step_events == {"ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4", "ProfilerStep#5"}

    r.sweep = [measurement.measure_batch_size(DataLoader(dataset, batch_size=b), step, steps=2, device=torch.device("cpu"), batch_size=b) for b in (4, 16)]
    assert [s["batch_size"] for s in r.sweep] == [4, 16] and all(s["images_per_s"] > 0 for s in r.sweep)
    report = rendering.write_report(r, tmp_path)
    html = report.read_text()
    for png in ("step_times.png", "utilisation.png", "batch_sizes.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC
        assert f"src='{png}'" in html
    assert "Step-time outliers" in html and "aten::convolution_backward" in html and "trace.json" in html
    saved = json.loads((tmp_path / "profile.json").read_text())
    assert len(saved["steps"]) == 9 and saved["summary"]["images_per_s"] > 0
    assert {f["title"] for f in saved["findings"]} >= {"Step-time outliers", "Data loader wait vs compute", "First step"}


def test_profile_command_runs_the_trainers_steps(dogimages_dir, tmp_path):
    out = tmp_path / "profile"
    args = ["profile", "--steps", "4", "--active-steps", "2", "--output-dir", str(out), "--batch-sizes", "3,6", "--sweep-steps", "1",
            "--data", str(dogimages_dir), "--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--resize-size", "36",
            "--batch-size", "6", "--workers", "0", "--threads", "2"]  # fmt: skip
    result = CliRunner().invoke(dogbreed_cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{out / 'report.html'}\n"
    saved = json.loads((out / "profile.json").read_text())
    assert len(saved["steps"]) == 4 and [s["batch_size"] for s in saved["steps"]] == [6, 6, 6, 6]
    assert saved["settings"]["backbone"] == "resnet18" and saved["settings"]["workers"] == 0
    assert saved["settings"]["mode"] == "finetune (5 of 5 backbone stages training)"
    assert [s["batch_size"] for s in saved["batch_size_sweep"]] == [3, 6]
    assert any(op["name"].startswith("aten::") and "conv" in op["name"] for op in saved["operators"])
    assert (out / "trace.json").stat().st_size > 0
    assert "Data-loader workers vs CPU cores" in (out / "report.html").read_text()
    # Progress on stderr (not a terminal here: one closing line per phase); one unit per table row.
    assert re.search(r"^profile: 4 steps in \d+\.\d s$", result.stderr, re.M), result.stderr
    assert re.search(r"^batch size 3: 2 steps in \d+\.\d s$", result.stderr, re.M), result.stderr
    assert "first step (ms)" in (out / "report.html").read_text() and "first step (s)" not in (out / "report.html").read_text()


def test_step_progress_redraws_one_line_with_an_eta():
    stream = io.StringIO()
    progress = measurement.StepProgress("profile", 4, stream=stream, redraw=True)
    for _ in range(2):
        progress(StepRecord(0, 8, 0.1, 0.4))
    progress.finish()
    assert stream.getvalue() == (
        "\rprofile: step 1/4, 500 ms/step, ETA 2 s\x1b[K"
        "\rprofile: step 2/4, 500 ms/step, ETA 1 s\x1b[K"
        "\r\x1b[Kprofile: 2 steps in 1.0 s\n"
    )


def test_no_libkineto_gpu_error_on_a_cpu_machine(tmp_path):
    # libkineto prints its "gpuGetDeviceCount failed" ERROR from C++ on the process's stderr: run apart.
    code = (
        "import torch\n"
        "from dogbreed.profiling import measurement\n"
        "model = torch.nn.Linear(4, 2)\n"
        "data = [(torch.randn(2, 4), torch.tensor([0, 1]))] * 3\n"
        "step = lambda batch: model(batch[0]).sum().backward()\n"
        f"measurement.profile_steps(data, step, steps=3, device=torch.device('cpu'), output_dir={str(tmp_path)!r}, settings={{}})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert "gpuGetDeviceCount" not in result.stderr and "ERROR" not in result.stderr


def test_profile_command_bad_input(tmp_path):
    result = CliRunner().invoke(dogbreed_cli, ["profile", "--output-dir", str(tmp_path / "p"), "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "missing" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()
    bad = CliRunner().invoke(dogbreed_cli, ["profile", "--batch-sizes", "8,x", "--data", str(tmp_path)])
    assert bad.exit_code == 2 and "expected comma-separated integers" in bad.stderr


def test_analysis_and_rendering_do_not_import_torch():
    # Only measuring needs torch: a saved run can be analysed and rendered on a machine without it.
    code = "import sys\nimport dogbreed.profiling.analysis, dogbreed.profiling.rendering\nprint('torch' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
