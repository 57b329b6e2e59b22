"""Real DDP: `torchrun` starts two gloo processes on this CPU that train through `dogbreed train`'s own
code. Every rank records a digest of the weights after each step and the indices its sampler hands
out; the test checks the ranks stay identical, see different shards, and that one artifact results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import hashlib, json, os, sys

    import torch

    torch.set_num_threads(1)
    from dogbreed import train

    record_dir, argv = sys.argv[1], sys.argv[2:]
    rank = int(os.environ["RANK"])
    record = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"]), "digests": [], "train_indices": []}

    def on_step_end(model, step):
        digest = hashlib.sha256()
        for parameter in model.parameters():
            digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
        record["digests"].append([step, digest.hexdigest()])

    make_loader = train.make_loader

    def recording_make_loader(dataset, *, sampler, **kwargs):
        if isinstance(sampler, torch.utils.data.DistributedSampler):
            record["train_indices"].append(list(iter(sampler)))
        return make_loader(dataset, sampler=sampler, **kwargs)

    train.make_loader = recording_make_loader
    train.configure_logging()
    result = train.main(train.parse_args(argv), on_step_end=on_step_end)
    record["artifact"] = None if result.artifact is None else str(result.artifact)
    record["metrics"] = {k: result.metrics[k] for k in ("val_acc1", "test_acc1") if k in result.metrics}
    with open(os.path.join(record_dir, f"rank{rank}.json"), "w") as f:
        json.dump(record, f)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(tmp_path: Path, argv: list[str]) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """``torchrun`` two gloo processes of the recording worker; (the run, rank 0's record, rank 1's)."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    records = tmp_path / "records"
    records.mkdir()
    # TMPDIR: torchrun leaves a torchelastic_* folder in the temporary directory; keep it in tmp_path.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp_path)}
    src = Path(__file__).resolve().parents[2] / "services" / "trainer" / "src"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        str(worker), str(records), *argv,
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    return run, json.loads((records / "rank0.json").read_text()), json.loads((records / "rank1.json").read_text())


def test_two_gloo_processes_train_in_lockstep_and_write_one_artifact(dogimages_dir, tmp_path, train_argv):
    output = tmp_path / "out"
    argv = train_argv(dogimages_dir, output, "--epochs", "2", "--batch-size", "3", "--image-size", "32", "--resize-size", "36", "--threads", "1")
    run, rank0, rank1 = run_two_ranks(tmp_path, argv)
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)

    # 18 training images, 9 per rank, batches of 3: 3 steps per epoch, 2 epochs.
    assert [step for step, _ in rank0["digests"]] == list(range(6))
    assert rank0["digests"] == rank1["digests"], "the ranks' weights diverged"
    assert len({digest for _, digest in rank0["digests"]}) == 6, "the weights did not change every step"

    # DistributedSampler: each epoch the ranks draw disjoint halves of the training set.
    assert len(rank0["train_indices"]) == len(rank1["train_indices"]) == 2
    for mine, theirs in zip(rank0["train_indices"], rank1["train_indices"], strict=True):
        assert len(mine) == len(theirs) == 9
        assert sorted(mine + theirs) == list(range(18))
    assert rank0["train_indices"][0] != rank0["train_indices"][1]  # reshuffled per epoch

    # Only rank 0 writes: one artifact, one set of checkpoints, one metric line per epoch.
    assert rank0["artifact"] == str(output / "model.tar.gz") and rank1["artifact"] is None
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*.tar.gz")) == ["model.tar.gz"]
    with tarfile.open(output / "model.tar.gz") as tar:
        assert "model.pth" in tar.getnames()
    assert sorted(p.name for p in (output / "checkpoints").glob("checkpoint-epoch*.pth")) == ["checkpoint-epoch001.pth", "checkpoint-epoch002.pth"]
    epoch_lines = [line for line in run.stdout.splitlines() if line.startswith("epoch=")]
    assert [line.split()[0] for line in epoch_lines] == ["epoch=1", "epoch=2"]
    assert sum(line.startswith("test_loss=") for line in run.stdout.splitlines()) == 1
    # Evaluation is sharded and all-reduced: every rank reports the same full-set metrics.
    assert rank0["metrics"] == rank1["metrics"]


def test_a_rank_whose_whole_batch_is_unreadable_still_steps_with_the_others(dogimages_dir, tmp_path, train_argv):
    # Batches of one: the rank drawing the broken photo gets a batch with nothing readable in it, while
    # the other rank trains on a real image. Both must take the step on the all-reduced gradients.
    photo = dogimages_dir / "train" / "002.Afghan_hound" / "Afghan_hound_003.jpg"
    photo.write_bytes(photo.read_bytes()[:300])  # fails to decode (not checked up front: it reaches the loader)
    argv = train_argv(dogimages_dir, tmp_path / "out", "--batch-size", "1", "--image-size", "64", "--resize-size", "72",
                      "--threads", "1", "--check-images", "false")
    run, rank0, rank1 = run_two_ranks(tmp_path, argv)

    assert "skipping unreadable image" in run.stderr and "Afghan_hound_003.jpg" in run.stderr
    # 18 training images, 9 per rank, one per step: 9 steps on each rank, the broken one's included.
    assert [step for step, _ in rank0["digests"]] == [step for step, _ in rank1["digests"]] == list(range(9))
    assert rank0["digests"] == rank1["digests"], "the ranks' weights diverged"
    assert rank0["metrics"] == rank1["metrics"]
