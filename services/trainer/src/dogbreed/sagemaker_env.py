"""Where the trainer runs: SageMaker script mode, ``torchrun``, or a plain shell.

SageMaker describes the job through ``SM_*`` environment variables and passes hyperparameters as
command-line strings, sometimes JSON-quoted (``--batch-size '"64"'``). Everything here reads the
environment with ``.get`` so the same entry point runs unchanged on a laptop, an EC2 host and
SageMaker, and the argparse type functions (``value_parsers``) accept both quoted and unquoted values.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .value_parsers import parse_int, strip_quotes

# Where SageMaker syncs checkpoints to S3 (the estimator's default checkpoint_local_path).
SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"


class LaunchError(RuntimeError):
    """The job was started in a way that cannot train correctly (e.g. several hosts without DDP)."""


def record_failure(message: str) -> None:
    """Under SageMaker's training toolkit, put the one-line reason in ``$SM_OUTPUT_DIR/failure``.

    The toolkit fills that file (SageMaker's ``FailureReason``) from stderr only from a line naming a
    Python exception class, and a ``dogbreed train: error: ...`` line is none: the reason would be
    empty. It keeps a failure file that already exists, so writing ours first makes it the reason.
    """
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    if not output_dir:
        return
    try:
        with open(os.path.join(output_dir, "failure"), "a", encoding="utf-8") as failure:
            failure.write(message.strip() + "\n")
    except OSError:  # never hide the real error behind this one
        pass


# --- command-line arguments ----------------------------------------------------------------------


def normalise_option_names(argv: Sequence[str]) -> list[str]:
    """``--batch_size 64`` -> ``--batch-size 64``: SageMaker users write hyperparameter names both ways."""
    out = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, sep, rest = token[2:].partition("=")
            if not name.startswith("_"):  # keep SageMaker-internal names such as --_tuning_objective_metric
                token = "--" + name.replace("_", "-") + sep + rest
        out.append(token)
    return out


# Arguments SageMaker adds on its own; accepted and ignored.
SAGEMAKER_INTERNAL_ARGUMENTS = ("--_tuning_objective_metric", "--sagemaker-", "--sagemaker_")


def split_internal_arguments(unknown: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argparse's leftovers into (SageMaker-internal arguments with their values, the rest)."""
    internal, rest = [], []
    i = 0
    while i < len(unknown):
        token = unknown[i]
        if token.startswith(SAGEMAKER_INTERNAL_ARGUMENTS):
            internal.append(token)
            if "=" not in token and i + 1 < len(unknown) and not unknown[i + 1].startswith("--"):
                internal.append(unknown[i + 1])
                i += 1
        else:
            rest.append(token)
        i += 1
    return internal, rest


# --- the SageMaker environment ------------------------------------------------------------------


def _parse_hosts(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        hosts = json.loads(raw)
    except json.JSONDecodeError:
        hosts = [h for h in raw.split(",")]
    if isinstance(hosts, str):
        hosts = [hosts]
    return [str(h).strip() for h in hosts if str(h).strip()]


def _parse_optional_int(raw: str | None) -> int | None:
    if raw is None or strip_quotes(raw) == "":
        return None
    try:
        return parse_int(raw)
    except argparse.ArgumentTypeError:
        return None


@dataclass(frozen=True)
class SageMakerEnv:
    """The parts of SageMaker's training environment the trainer uses; all optional."""

    model_dir: str | None = None
    output_data_dir: str | None = None
    channels: dict[str, str] = field(default_factory=dict)  # channel name (lower case) -> local path
    num_gpus: int | None = None
    hosts: list[str] = field(default_factory=list)
    current_host: str | None = None
    training_env: bool = False  # SM_TRAINING_ENV is set: certainly inside a SageMaker job

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SageMakerEnv:
        env = os.environ if environ is None else environ
        channels = {
            name[len("SM_CHANNEL_") :].lower(): value
            for name, value in env.items()
            if name.startswith("SM_CHANNEL_") and value
        }
        return cls(
            model_dir=env.get("SM_MODEL_DIR") or None,
            output_data_dir=env.get("SM_OUTPUT_DATA_DIR") or None,
            channels=channels,
            num_gpus=_parse_optional_int(env.get("SM_NUM_GPUS")),
            hosts=_parse_hosts(env.get("SM_HOSTS")),
            current_host=env.get("SM_CURRENT_HOST") or None,
            training_env="SM_TRAINING_ENV" in env,
        )

    @property
    def on_sagemaker(self) -> bool:
        return self.training_env or self.model_dir is not None

    @property
    def num_hosts(self) -> int:
        return max(1, len(self.hosts))

    def channel(self, *names: str) -> str | None:
        """The path of the first channel present among ``names`` (e.g. ``"valid", "validation"``)."""
        for name in names:
            if self.channels.get(name):
                return self.channels[name]
        return None


# --- distributed launch (torchrun, SageMaker's torch_distributed) -------------------------------


@dataclass(frozen=True)
class DistributedEnv:
    """Rank and world size as set by ``torchrun`` (which SageMaker's torch_distributed launcher runs)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistributedEnv:
        env = os.environ if environ is None else environ

        def number(name: str, default: int) -> int:
            value = _parse_optional_int(env.get(name))
            return default if value is None else value

        world_size = number("WORLD_SIZE", 1)
        return cls(
            rank=number("RANK", 0),
            world_size=world_size,
            local_rank=number("LOCAL_RANK", 0),
            local_world_size=number("LOCAL_WORLD_SIZE", world_size),
        )

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def check_launch(num_hosts: int, dist_env: DistributedEnv) -> None:
    """Refuse a multi-host job that was not started by a distributed launcher.

    Without DDP every host would train the same model on the same data and race to write the
    same artifact: the cost of N hosts for the result of one.
    """
    if num_hosts <= 1:
        return
    if not dist_env.is_distributed:
        raise LaunchError(
            f"this job has {num_hosts} hosts but was not started by a distributed launcher, so every host "
            "would repeat the same training; start it with torchrun (--nnodes/--nproc-per-node) or, on SageMaker, "
            "distribution={'torch_distributed': {'enabled': True}}, or use one host (--num-hosts 1)"
        )
    if dist_env.world_size < num_hosts:
        raise LaunchError(
            f"WORLD_SIZE={dist_env.world_size} is smaller than the number of hosts ({num_hosts}); "
            "some hosts would sit idle or repeat work; start one or more processes per host with torchrun"
        )
