"""SageMaker script mode: environment variables, quoted hyperparameters, and the multi-host guard."""

from __future__ import annotations

import json

import pytest

from dogbreed.sagemaker_env import (
    SAGEMAKER_CHECKPOINT_DIR,
    DistributedEnv,
    LaunchError,
    SageMakerEnv,
    check_launch,
    normalise_option_names,
    split_internal_arguments,
)
from dogbreed.train import ConfigError, cli_main, parse_args, resolve_args

SM_ENV_NAMES = ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_NUM_GPUS", "SM_HOSTS", "SM_CURRENT_HOST", "SM_TRAINING_ENV",
                "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALID", "SM_CHANNEL_VALIDATION", "SM_CHANNEL_TEST", "SM_CHANNEL_TRAINING",
                "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in SM_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


# --- command-line arguments --------------------------------------------------------------------------


def test_option_names_with_underscores_become_dashes_but_values_and_internal_names_do_not():
    argv = ["--batch_size", "64", "--train_dir=/data/my_train", "--_tuning_objective_metric", "validation:accuracy"]
    assert normalise_option_names(argv) == [
        "--batch-size", "64", "--train-dir=/data/my_train", "--_tuning_objective_metric", "validation:accuracy"
    ]


def test_sagemaker_internal_arguments_are_split_off_with_their_values():
    internal, rest = split_internal_arguments(["--_tuning_objective_metric", "validation:accuracy", "--bogus", "1"])
    assert internal == ["--_tuning_objective_metric", "validation:accuracy"]
    assert rest == ["--bogus", "1"]


def test_quoted_hyperparameters_parse_like_plain_ones():
    args = parse_args([
        "--data", '"/opt/ml/input/data/training"', "--batch_size", '"64"', "--lr", "'0.01'", "--backbone", '"ResNet18"',
        "--channels-last", '"false"', "--epochs", "3.0", "--unfreeze-depth", '"all"', "--_tuning_objective_metric",
        "validation:accuracy", "--split-fractions", '"0.8,0.1,0.1"',
    ])
    assert args.data == "/opt/ml/input/data/training"
    assert args.batch_size == 64
    assert args.lr == pytest.approx(0.01)
    assert args.backbone == "resnet18"
    assert args.channels_last is False
    assert args.epochs == 3
    assert args.unfreeze_depth is None
    assert args.split_fractions == pytest.approx((0.8, 0.1, 0.1))


def test_boolean_flags_work_bare_and_with_a_value():
    assert parse_args(["--channels-last"]).channels_last is True
    assert parse_args(["--channels-last", "0"]).channels_last is False
    assert parse_args([]).channels_last is True


# --- the environment ---------------------------------------------------------------------------------


def test_outside_sagemaker_everything_is_empty():
    env = SageMakerEnv.from_environ({})
    assert not env.on_sagemaker
    assert env.channels == {} and env.hosts == [] and env.num_hosts == 1 and env.num_gpus is None


def test_sagemaker_variables_are_read():
    env = SageMakerEnv.from_environ({
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
        "SM_CHANNEL_VALID": "/opt/ml/input/data/valid",
        "SM_CHANNELS": '["train","valid"]',
        "SM_NUM_GPUS": "4",
        "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
        "SM_CURRENT_HOST": "algo-2",
    })
    assert env.on_sagemaker
    assert env.model_dir == "/opt/ml/model" and env.output_data_dir == "/opt/ml/output/data"
    assert env.channels == {"train": "/opt/ml/input/data/train", "valid": "/opt/ml/input/data/valid"}
    assert env.channel("validation", "valid") == "/opt/ml/input/data/valid"
    assert env.num_gpus == 4 and env.hosts == ["algo-1", "algo-2"] and env.num_hosts == 2 and env.current_host == "algo-2"


def test_malformed_values_do_not_crash():
    env = SageMakerEnv.from_environ({"SM_NUM_GPUS": "lots", "SM_HOSTS": "algo-1,algo-2"})
    assert env.num_gpus is None and env.hosts == ["algo-1", "algo-2"]
    assert DistributedEnv.from_environ({"WORLD_SIZE": "x"}).world_size == 1


def test_torchrun_variables_are_read():
    dist_env = DistributedEnv.from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (dist_env.rank, dist_env.world_size, dist_env.local_rank, dist_env.local_world_size) == (3, 4, 1, 2)
    assert dist_env.is_distributed and not dist_env.is_main
    assert not DistributedEnv.from_environ({}).is_distributed


def test_sagemaker_channels_and_dirs_fill_the_defaults(monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/sm/model")
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", "/sm/output")
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/sm/train")
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", "/sm/validation")
    monkeypatch.setenv("SM_CHANNEL_TEST", "/sm/test")
    monkeypatch.setenv("SM_HOSTS", '["algo-1"]')
    args = resolve_args(parse_args([]))
    assert (args.train_dir, args.valid_dir, args.test_dir, args.data) == ("/sm/train", "/sm/validation", "/sm/test", None)
    assert args.model_dir == "/sm/model" and args.output_dir == "/sm/output"
    assert args.checkpoint_dir == SAGEMAKER_CHECKPOINT_DIR and args.resume == "auto" and args.num_hosts == 1


def test_one_training_channel_is_the_data_folder(monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/sm/model")
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/sm/training")
    assert resolve_args(parse_args([])).data == "/sm/training"


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/sm/model")
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/sm/training")
    args = resolve_args(parse_args(["--data", "/mine", "--model-dir", "/m", "--checkpoint-dir", "/c", "--resume", "none"]))
    assert (args.data, args.model_dir, args.checkpoint_dir, args.resume) == ("/mine", "/m", "/c", "none")


def test_outside_sagemaker_defaults_are_local():
    args = resolve_args(parse_args(["--data", "d"]))
    assert args.output_dir == "outputs" and args.model_dir is None and args.checkpoint_dir is None and args.resume == "none"


def test_no_data_anywhere_is_a_config_error():
    with pytest.raises(ConfigError, match="no training data: pass --data DIR"):
        resolve_args(parse_args([]))


# --- several hosts need a distributed launch -----------------------------------------------------------


def test_multi_host_without_distributed_launch_is_refused():
    with pytest.raises(LaunchError, match="2 hosts but was not started by a distributed launcher"):
        check_launch(2, DistributedEnv())


def test_multi_host_with_fewer_processes_than_hosts_is_refused():
    with pytest.raises(LaunchError, match="WORLD_SIZE=2 is smaller than the number of hosts"):
        check_launch(3, DistributedEnv(rank=0, world_size=2))


def test_single_host_and_proper_distributed_launches_pass():
    check_launch(1, DistributedEnv())
    check_launch(2, DistributedEnv(rank=1, world_size=4, local_rank=1, local_world_size=2))


def test_training_on_two_sagemaker_hosts_without_ddp_exits_2_before_writing(monkeypatch, tmp_path, dogimages_dir, train_argv, capsys):
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-1")
    out = tmp_path / "out"
    assert cli_main(train_argv(dogimages_dir, out, "--checkpoint-dir", str(tmp_path / "ck"))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("dogbreed train: error: this job has 2 hosts but was not started by a distributed launcher")
    assert not out.exists() and not (tmp_path / "ck").exists()


def test_num_hosts_flag_is_guarded_too(tmp_path, dogimages_dir, train_argv, capsys):
    assert cli_main(train_argv(dogimages_dir, tmp_path / "out", "--num-hosts", "2")) == 2
    assert "not started by a distributed launcher" in capsys.readouterr().err


def test_a_failure_reason_goes_to_the_toolkits_failure_file(tmp_path, monkeypatch):
    from dogbreed.sagemaker_env import record_failure

    monkeypatch.delenv("SM_OUTPUT_DIR", raising=False)
    record_failure("dogbreed train: error: nothing")  # not under SageMaker: nothing written anywhere
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path))
    record_failure("dogbreed train: error: no training data\n")
    assert (tmp_path / "failure").read_text() == "dogbreed train: error: no training data\n"
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "missing"))
    record_failure("never raises")  # an unwritable folder must not hide the real error
