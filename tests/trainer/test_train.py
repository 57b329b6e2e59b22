"""``dogbreed train`` end to end on tiny generated folders (CPU, a few seconds per run)."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import dogbreed.train as train_module
from dogbreed.cli import main as dogbreed_cli
from dogbreed.metric_lines import METRIC_DEFINITIONS, parse_epoch_line
from dogbreed.train import cli_main, parse_args
from dogbreed.training.arguments import train_params

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def outside_sagemaker(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name)


def run(argv, capsys) -> tuple[int, list[str], str]:
    code = cli_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def epoch_lines(stdout: list[str]) -> list[dict]:
    return [parse_epoch_line(line) for line in stdout if line.startswith("epoch=")]


def load_artifact(path: Path):
    from dogbreed.serving.loading import load_model

    return load_model(path)


# --- the happy paths -------------------------------------------------------------------------------


def test_one_epoch_on_dogimages_writes_a_loadable_artifact_and_a_report(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run(train_argv(dogimages_dir, out, "--report", "true"), capsys)
    assert code == 0, stderr

    # One metric line per epoch that every SageMaker regex reads, then the test line.
    assert len(stdout) == 2, stdout
    assert re.fullmatch(
        r"epoch=1 train_loss=\d+\.\d{4} train_acc1=\d\.\d{4} val_loss=\d+\.\d{4} val_acc1=\d\.\d{4} "
        r"val_acc5=\d\.\d{4} lr=0\.010000 epoch_time=\d+\.\ds",
        stdout[0],
    )
    for definition in METRIC_DEFINITIONS[:5]:
        assert re.search(definition["Regex"], stdout[0]), definition
    assert re.fullmatch(r"test_loss=\d+\.\d{4} test_acc1=\d\.\d{4} test_acc5=1\.0000", stdout[1])  # 3 classes: top-5 = 1

    artifact = out / "model.tar.gz"
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"model.pth", "metadata.json", "code/inference.py"} <= names
    loaded = load_artifact(artifact)
    metadata = loaded.metadata
    assert metadata["backbone"] == "resnet18" and metadata["name"] == "resnet18-dogimages"
    assert metadata["classes"] == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    assert (metadata["image_size"], metadata["resize_size"]) == (40, 44)
    assert metadata["training_args"]["batch_size"] == 6
    test_line = parse_epoch_line(stdout[0])
    assert metadata["metrics"]["val_acc1"] == pytest.approx(test_line["val_acc1"], abs=1e-4)
    assert metadata["metrics"]["test_acc1"] == pytest.approx(float(stdout[1].split("test_acc1=")[1].split()[0]), abs=1e-4)
    probabilities, _ = loaded.predict_proba(torch.zeros(1, 3, 40, 40))
    assert probabilities.shape == (1, 3) and float(probabilities.sum()) == pytest.approx(1.0, abs=1e-4)

    assert (out / "report" / "report.md").is_file() and (out / "report" / "confusion_matrix.png").is_file()
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 1
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best-model.pth", "checkpoint-epoch001.pth"]
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    assert "data: 3 breeds; 18 train / 6 valid / 6 test images" in stderr


def test_stanford_layout_records_its_split_and_trains_several_epochs(stanford_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run(train_argv(stanford_dir, out, "--epochs", "2", "--split-fractions", "0.6,0.2,0.2"), capsys)
    assert code == 0, stderr
    assert [int(e["epoch"]) for e in epoch_lines(stdout)] == [1, 2]
    record = json.loads((out / "split.json").read_text())
    assert [len(record["splits"][s]) for s in ("train", "valid", "test")] == [18, 6, 6]
    metadata = load_artifact(out / "model.tar.gz").metadata
    assert metadata["classes"] == ["Chihuahua", "Beagle", "Siberian husky"]
    assert metadata["name"] == "resnet18-stanford"
    # The cosine schedule over 2 epochs: full rate, then half.
    assert [e["lr"] for e in epoch_lines(stdout)] == [0.01, 0.005]


def test_reusing_a_recorded_split(stanford_dir, tmp_path, train_argv, capsys):
    first = tmp_path / "first"
    assert run(train_argv(stanford_dir, first, "--seed", "5"), capsys)[0] == 0
    second = tmp_path / "second"
    code, _, stderr = run(train_argv(stanford_dir, second, "--seed", "6", "--split-file", first / "split.json"), capsys)
    assert code == 0, stderr
    assert json.loads((second / "split.json").read_text())["splits"] == json.loads((first / "split.json").read_text())["splits"]


def test_frozen_backbone_without_augmentation_computes_features_once(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    calls = []
    real = train_module.compute_features

    def counting(model, dataset, **kwargs):
        calls.append(len(dataset))
        return real(model, dataset, **kwargs)

    monkeypatch.setattr(train_module, "compute_features", counting)
    cache_dir = tmp_path / "features"
    argv = ["--mode", "frozen", "--augmentation", "none", "--epochs", "3", "--amp", "none", "--feature-cache-dir", cache_dir]
    code, stdout, stderr = run(train_argv(dogimages_dir, tmp_path / "a", *argv), capsys)
    assert code == 0, stderr
    assert calls == [18, 6]  # train and validation features, once for three epochs
    assert len(list(cache_dir.glob("features-*.pt"))) == 2
    cached = epoch_lines(stdout)

    calls.clear()  # a second run finds the features on disk
    code, _, stderr = run(train_argv(dogimages_dir, tmp_path / "b", *argv), capsys)
    assert code == 0 and calls == []
    assert "loaded cached train features" in stderr

    # Training the head on cached features is the same computation as running the frozen backbone.
    code, stdout, stderr = run(train_argv(dogimages_dir, tmp_path / "c", *argv[:-2], "--cache-features", "false"), capsys)
    assert code == 0 and calls == []
    for with_cache, without in zip(cached, epoch_lines(stdout), strict=True):
        for key in ("train_loss", "val_loss", "val_acc1"):
            assert with_cache[key] == pytest.approx(without[key], abs=2e-3), key


def test_staged_unfreezing_trains_more_layers_each_epoch(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    trainable_per_epoch = []

    def record(model, step):
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        if not trainable_per_epoch or trainable_per_epoch[-1] != names:
            trainable_per_epoch.append(names)

    real_main = train_module.main
    monkeypatch.setattr(train_module, "main", lambda args: real_main(args, on_step_end=record))
    argv = ["--mode", "staged", "--epochs", "3", "--freeze-epochs", "1", "--unfreeze-depth", "2"]
    code, _, stderr = run(train_argv(dogimages_dir, tmp_path / "out", *argv), capsys)
    assert code == 0, stderr
    layers = [{n.split(".")[0] for n in names} for names in trainable_per_epoch]
    assert layers == [{"fc"}, {"fc", "layer4"}, {"fc", "layer4", "layer3"}]
    assert "epoch 2: training the head and the last 1 of 5 backbone stages" in stderr


def test_sgd_step_schedule_class_weights_and_full_precision(dogimages_dir, tmp_path, train_argv, capsys):
    argv = ["--optimizer", "sgd", "--lr-scheduler", "step", "--lr-step-size", "1", "--lr-gamma", "0.5", "--epochs", "2",
            "--class-weights", "balanced", "--amp", "none", "--channels-last", "false", "--label-smoothing", "0",
            "--lr-warmup-epochs", "0", "--clip-grad-norm", "1.0"]
    code, stdout, stderr = run(train_argv(dogimages_dir, tmp_path / "out", *argv), capsys)
    assert code == 0, stderr
    assert [e["lr"] for e in epoch_lines(stdout)] == [0.01, 0.005]
    assert "amp off, channels_last False" in stderr


def test_early_stopping_keeps_the_best_epoch(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    val_losses = iter([1.0, 0.5, 0.9, 0.8, 0.7, 0.6])
    real_evaluate = train_module.evaluate
    best_weights = {}

    def scripted(model, loader, device, **kwargs):
        result = real_evaluate(model, loader, device, **kwargs)
        if kwargs.get("desc") == "validation":
            result["loss"] = next(val_losses)
            if result["loss"] == 0.5:
                best_weights.update({k: v.clone() for k, v in model.state_dict().items()})
        return result

    monkeypatch.setattr(train_module, "evaluate", scripted)
    out = tmp_path / "out"
    code, stdout, stderr = run(train_argv(dogimages_dir, out, "--epochs", "6", "--patience", "2"), capsys)
    assert code == 0, stderr
    assert [e["val_loss"] for e in epoch_lines(stdout)] == [1.0, 0.5, 0.9, 0.8]  # stopped 2 epochs after the best
    assert "early stopping: validation loss has not improved for 2 epochs (best 0.5000 at epoch 2)" in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == 2 and metrics["val_loss"] == 0.5 and metrics["stopped_early"] is True
    state = torch.load(out / "checkpoints" / "best-model.pth", weights_only=True)
    assert all(torch.equal(state[k], best_weights[k]) for k in best_weights)
    artifact_state = load_artifact(out / "model.tar.gz").model.state_dict()
    assert torch.allclose(artifact_state["fc.weight"], best_weights["fc.weight"])


def test_diagnostics_warnings_are_logged_and_kept_in_the_metadata(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    from dogbreed import diagnostics

    monkeypatch.setattr(diagnostics.TrainingMonitor, "after_epoch", lambda self, epoch, train, val: [f"overfitting: epoch {epoch}"])
    code, _, stderr = run(train_argv(dogimages_dir, tmp_path / "out"), capsys)
    assert code == 0
    assert "WARNING overfitting: epoch 1" in stderr
    assert load_artifact(tmp_path / "out" / "model.tar.gz").metadata["metrics"]["warnings"] == ["overfitting: epoch 1"]


def test_sagemaker_job_reads_channels_and_writes_an_unpacked_model_dir(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    model_dir, output_dir = tmp_path / "opt-ml-model", tmp_path / "opt-ml-output-data"
    model_dir.mkdir()
    for name, value in {
        "SM_MODEL_DIR": model_dir, "SM_OUTPUT_DATA_DIR": output_dir, "SM_CHANNEL_TRAIN": dogimages_dir / "train",
        "SM_CHANNEL_VALID": dogimages_dir / "valid", "SM_CHANNEL_TEST": dogimages_dir / "test",
        "SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1", "SM_NUM_GPUS": "0",
    }.items():
        monkeypatch.setenv(name, str(value))
    argv = train_argv(None, output_dir, "--checkpoint-dir", tmp_path / "checkpoints")
    argv = argv[2:]  # no --output-dir: SM_OUTPUT_DATA_DIR is the default
    code, _, stderr = run(argv, capsys)
    assert code == 0, stderr
    # SageMaker tars SM_MODEL_DIR itself, so the artifact's files go in unpacked.
    assert {p.name for p in model_dir.iterdir()} >= {"model.pth", "metadata.json", "code"}
    assert load_artifact(model_dir).metadata["classes"][2] == "Labrador retriever"
    assert (output_dir / "metrics.json").is_file()
    assert len(list((tmp_path / "checkpoints").glob("checkpoint-epoch*.pth"))) == 1
    assert "no checkpoint in" in stderr  # --resume defaults to auto on SageMaker
    assert "GPUs but only one is used" not in stderr


def test_quoted_hyperparameters_through_the_dogbreed_command(dogimages_dir, tmp_path, train_argv):
    argv = train_argv(dogimages_dir, tmp_path / "out")
    quoted = [f'"{a}"' if not a.startswith("--") else a.replace("-", "_").replace("__", "--", 1) for a in map(str, argv)]
    result = CliRunner().invoke(dogbreed_cli, ["train", *quoted, "--_tuning_objective_metric", "validation:accuracy"])
    assert result.exit_code == 0, result.output
    assert "ignoring SageMaker's own arguments: --_tuning_objective_metric validation:accuracy" in result.stderr
    assert result.stdout.startswith("epoch=1 ")
    assert (tmp_path / "out" / "model.tar.gz").is_file()


def test_help_lists_every_flag_with_its_default():
    result = CliRunner().invoke(dogbreed_cli, ["train", "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    for param in train_params():
        assert param.opts[0] in help_text
        assert "(default: " in param.help, param.name
    assert "--backbone [resnet18|resnet34|resnet50|resnet101|efficientnet_lite0]" in help_text
    assert "network (default: resnet50)" in help_text


def test_sagemaker_entry_point_script_runs_the_trainer():
    script = REPO_ROOT / "services" / "trainer" / "sagemaker_entry" / "train.py"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: train.py [OPTIONS]") and "--checkpoint-dir" in result.stdout


@pytest.mark.filterwarnings("ignore:'dogbreed.train' found in sys.modules")
def test_python_dash_m_dogbreed_train(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m dogbreed.train", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("dogbreed.train", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: python -m dogbreed.train [OPTIONS]")


# --- bad input: one line, exit code 2, nothing written ---------------------------------------------------


def assert_refused(argv, tmp_path, expected_error: str) -> None:
    result = CliRunner().invoke(dogbreed_cli, ["train", *map(str, argv)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"dogbreed train: error: {expected_error}"], lines
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def assert_usage_error(argv, tmp_path, expected_error: str) -> None:
    """A bad flag: click's usage error like every dogbreed command, exit 2, nothing written."""
    result = CliRunner().invoke(dogbreed_cli, ["train", *map(str, argv)], prog_name="dogbreed")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "Usage: dogbreed train [OPTIONS]\n"
        "Try 'dogbreed train --help' for help.\n"
        "\n"
        f"Error: {expected_error}\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_unknown_backbone(dogimages_dir, tmp_path, train_argv):
    assert_usage_error(train_argv(dogimages_dir, tmp_path / "out", "--backbone", "vgg16"), tmp_path,
                       "Invalid value for '--backbone': 'vgg16' is not one of 'resnet18', 'resnet34', 'resnet50', "
                       "'resnet101', 'efficientnet_lite0'.")


def test_unknown_optimizer(dogimages_dir, tmp_path, train_argv):
    assert_usage_error(train_argv(dogimages_dir, tmp_path / "out", "--optimizer", "adam"), tmp_path,
                       "Invalid value for '--optimizer': 'adam' is not one of 'adamw', 'sgd'.")


def test_bad_number(dogimages_dir, tmp_path, train_argv):
    assert_usage_error(train_argv(dogimages_dir, tmp_path / "out", "--batch-size", "0"), tmp_path,
                       "Invalid value for '--batch-size': expected a number > 0, got '0'")


def test_bad_integer(dogimages_dir, tmp_path, train_argv):
    assert_usage_error(train_argv(dogimages_dir, tmp_path / "out", "--epochs", "many"), tmp_path,
                       "Invalid value for '--epochs': expected an integer, got 'many'")


def test_unknown_argument(dogimages_dir, tmp_path, train_argv):
    assert_usage_error(train_argv(dogimages_dir, tmp_path / "out", "--colour", "blue"), tmp_path,
                       "No such option '--colour'. Did you mean '--lr'?")


def test_stray_value(dogimages_dir, tmp_path, train_argv):
    assert_usage_error([*train_argv(dogimages_dir, tmp_path / "out"), "blue"], tmp_path,
                       "Got unexpected extra argument (blue)")


def test_a_usage_error_is_sagemakers_one_line_failure_reason(dogimages_dir, tmp_path, train_argv, monkeypatch, capsys):
    # The bad-hyperparameter job of tests/training_image (which needs a training image to run): the toolkit
    # decodes the hyperparameter '"many"' and runs the entry script (cli_main) with --epochs many.
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "sm-output"))
    (tmp_path / "sm-output").mkdir()
    code, stdout, stderr = run([*train_argv(dogimages_dir, tmp_path / "out"), "--epochs", "many"], capsys)
    assert code == 2 and stdout == []
    assert stderr.endswith("Error: Invalid value for '--epochs': expected an integer, got 'many'\n")
    assert (tmp_path / "sm-output" / "failure").read_text() == (
        "dogbreed train: error: Invalid value for '--epochs': expected an integer, got 'many'\n")
    assert not (tmp_path / "out").exists()


def test_missing_data_folder(tmp_path, train_argv):
    assert_refused(train_argv(tmp_path / "nowhere", tmp_path / "out"), tmp_path,
                   f"data folder not found: {tmp_path / 'nowhere'}")


def test_empty_data_folder(tmp_path, train_argv):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(dogbreed_cli, ["train", *map(str, train_argv(tmp_path / "empty", tmp_path / "out"))])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"dogbreed train: error: data folder is empty: {tmp_path / 'empty'}; expected split folders")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_breed_without_images(dogimages_dir, tmp_path, train_argv):
    for path in (dogimages_dir / "test" / "002.Afghan_hound").iterdir():
        path.unlink()
    assert_refused(train_argv(dogimages_dir, tmp_path / "out"), tmp_path,
                   f"breed folder has no readable images: {dogimages_dir / 'test' / '002.Afghan_hound'} "
                   "(accepted image types: .jpg, .jpeg, .png, .bmp, .gif, .webp, .tif, .tiff); add images or remove the folder")


def test_mismatched_breeds(dogimages_dir, tmp_path, train_argv):
    (dogimages_dir / "valid" / "001.Affenpinscher").rename(dogimages_dir / "valid" / "001.Affenpinscherx")
    assert_refused(train_argv(dogimages_dir, tmp_path / "out"), tmp_path,
                   "breed folders differ between splits (every split needs the same breeds): "
                   "valid lacks 001.Affenpinscher; valid has extra 001.Affenpinscherx")


def test_weights_that_do_not_exist(dogimages_dir, tmp_path, train_argv):
    argv = train_argv(dogimages_dir, tmp_path / "out")
    argv[argv.index("--weights") + 1] = str(tmp_path / "w.pth")
    assert_refused(argv, tmp_path, f"weights not found: {tmp_path / 'w.pth'}; --weights takes imagenet, none, "
                   "or a path to a .pth file or artifact")


def test_resize_smaller_than_crop(dogimages_dir, tmp_path, train_argv):
    assert_refused(train_argv(dogimages_dir, tmp_path / "out", "--resize-size", "20"), tmp_path,
                   "--resize-size (20) must be at least --image-size (40)")


def test_parse_args_defaults_are_the_documented_ones():
    args = parse_args([])
    assert (args.backbone, args.weights, args.mode, args.optimizer, args.lr_scheduler) == (
        "resnet50", "imagenet", "finetune", "adamw", "cosine")
    assert (args.amp, args.channels_last, args.epochs, args.batch_size, args.patience) == ("auto", True, 10, 32, 5)


def test_s3_data_in_and_outputs_out(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="dogs")
        for path in dogimages_dir.rglob("*.jpg"):
            s3.upload_file(str(path), "dogs", f"dogImages/{path.relative_to(dogimages_dir).as_posix()}")
        argv = train_argv("s3://dogs/dogImages", "s3://dogs/runs/1", "--download-dir", tmp_path / "mirror",
                          "--checkpoint-dir", tmp_path / "checkpoints")
        code, stdout, stderr = run(argv, capsys)
        assert code == 0, stderr
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dogs", Prefix="runs/1/")["Contents"]}
        s3.download_file("dogs", "runs/1/model.tar.gz", str(tmp_path / "model.tar.gz"))
    assert {"runs/1/model.tar.gz", "runs/1/metrics.json", "runs/1/history.json"} <= keys
    assert len(list((tmp_path / "mirror").rglob("*.jpg"))) == 30
    assert "uploaded the outputs to s3://dogs/runs/1" in stderr
    assert load_artifact(tmp_path / "model.tar.gz").metadata["name"] == "resnet18-dogimages"
    assert len(epoch_lines(stdout)) == 1
    assert not list((tmp_path / "tmp").glob("dogbreed-output-*"))  # the local staging copy is gone


def test_readme_documents_every_flag():
    readme = (REPO_ROOT / "services" / "trainer" / "README.md").read_text()
    table = readme[readme.index("### Flags"):readme.index("### From Python")]
    documented = set(re.findall(r"^\| `(--[a-z0-9-]+)", table, re.M))
    flags = {param.opts[0] for param in train_params()}
    assert documented == flags



# --- the loss that is optimised and the one that is reported ------------------------------------------


def test_weighted_loss_backprops_the_weighted_mean_and_reports_the_per_sample_mean():
    from dogbreed.train import StepContext, make_criterion, train_one_epoch

    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    weight = torch.tensor([0.5, 1.0, 3.0])
    batches = [(torch.randn(4, 5), torch.tensor([0, 0, 1, 2])), (torch.randn(2, 5), torch.tensor([2, 2]))]
    start = nn.Linear(5, 3).state_dict()

    def linear() -> nn.Linear:
        layer = nn.Linear(5, 3)
        layer.load_state_dict(start)
        return layer

    def one_epoch(model, optimizer, data):
        return train_one_epoch(model, make_criterion(weight, 0.1), optimizer, data, 1, StepContext(device=torch.device("cpu")))

    # Reported: the per-sample losses (weights and smoothing in them) summed, over the number of samples.
    with torch.no_grad():
        per_sample = torch.cat([F.cross_entropy(linear()(x), y, weight=weight, label_smoothing=0.1, reduction="none")
                                for x, y in batches])
        batch_means_times_n = sum(nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(linear()(x), y) * len(y)
                                  for x, y in batches)
    model = linear()
    metrics = one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), batches)  # lr 0: one set of weights
    assert metrics["count"] == 6
    assert metrics["loss"] == pytest.approx(per_sample.mean().item(), rel=1e-6)
    assert metrics["loss"] != pytest.approx(batch_means_times_n.item() / 6, rel=1e-3)  # what it used to report

    # Optimised: sum(w_i l_i) / sum(w_i), the gradient of CrossEntropyLoss(weight=w) with mean reduction.
    model, reference = linear(), linear()
    one_epoch(model, torch.optim.SGD(model.parameters(), lr=1.0), batches[:1])
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=1.0)
    nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(reference(batches[0][0]), batches[0][1]).backward()
    reference_optimizer.step()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert not torch.equal(mine, start["weight" if mine.ndim == 2 else "bias"])
        assert torch.allclose(mine, theirs, atol=1e-6)


# --- distributed runs with s3:// outputs --------------------------------------------------------------


def test_only_rank_zero_stages_s3_outputs_in_a_temporary_folder(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    """Rank 0 uploads and removes its staging folder; another rank must not leave one behind.
    (No process group: rank 1's own code path, its collectives reduce to itself.)"""
    from dogbreed.sagemaker_env import DistributedEnv, SageMakerEnv

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    argv = train_argv(dogimages_dir, "s3://dogs/runs/1", "--checkpoint-dir", tmp_path / "checkpoints")
    args = train_module.resolve_args(parse_args([str(a) for a in argv]), SageMakerEnv.from_environ())
    result = train_module._run(args, DistributedEnv(rank=1, world_size=2, local_rank=1, local_world_size=2),
                               torch.device("cpu"), on_epoch_end=None, on_step_end=None)
    assert result.artifact is None and result.output_dir == "s3://dogs/runs/1"
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "checkpoints").exists()  # and writes nothing else
    assert capsys.readouterr().out == ""  # nor prints metric lines
