"""torchrun: two CPU processes (gloo) train like one process with the same global batch, and only the
first process writes files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, tmp_path, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUSICLAB_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _torchrun(n, *args):
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}", "--standalone", *args]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    _run([sys.executable, str(WORKER), "next-token", "64", "one"], tmp_path)
    _run(_torchrun(2, str(WORKER), "next-token", "32", "two"), tmp_path)
    one, two = (json.loads((tmp_path / name).read_text()) for name in ("one.rank0.json", "two.rank0.json"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    losses = [[row["train_nll"] for row in run["history"]] for run in (one, two)]
    assert len(losses[0]) == 6 and losses[0][-1] < losses[0][0]  # it learns
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert two["weights"] == pytest.approx(one["weights"], rel=1e-4, abs=1e-4)


def test_every_process_ends_with_the_same_cyclegan(tmp_path):
    """The CycleGAN's steps call its two generators directly: they are averaged across processes too."""
    _run(_torchrun(2, str(WORKER), "cyclegan", "4", "run"), tmp_path)
    first, second = (json.loads((tmp_path / f"run.rank{r}.json").read_text()) for r in (0, 1))
    # each process drew other batches, so unsynchronised generators would differ (by about 0.05 here)
    assert first["weights"] == pytest.approx(second["weights"], rel=1e-6, abs=1e-7)


def test_torchrun_train_writes_once(tmp_path):
    result = _run(_torchrun(2, "-m", "musiclab", "train", "next-token", "--steps", "4", "--out", "out"), tmp_path)
    sidecar = json.loads((tmp_path / "out" / "next-token.json").read_text())
    assert sidecar["processes"] == 2 and sidecar["metrics"]["steps"] == 4
    assert result.stdout.count("weights:") == 1  # only the first process reports
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["next-token.json", "next-token.pt",
                                                                   "next-token.safetensors"]
