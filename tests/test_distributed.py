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
    _run([sys.executable, str(WORKER), "64", "one.json"], tmp_path)
    _run(_torchrun(2, str(WORKER), "32", "two.json"), tmp_path)
    one, two = (json.loads((tmp_path / name).read_text()) for name in ("one.json", "two.json"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    losses = [[row["train_nll"] for row in run["history"]] for run in (one, two)]
    assert len(losses[0]) == 6 and losses[0][-1] < losses[0][0]  # it learns
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert two["weights"] == pytest.approx(one["weights"], rel=1e-4, abs=1e-4)


def test_torchrun_train_writes_once(tmp_path):
    result = _run(_torchrun(2, "-m", "musiclab", "train", "next-token", "--steps", "4", "--out", "out"), tmp_path)
    sidecar = json.loads((tmp_path / "out" / "next-token.json").read_text())
    assert sidecar["processes"] == 2 and sidecar["metrics"]["steps"] == 4
    assert result.stdout.count("weights:") == 1  # only the first process reports
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["next-token.json", "next-token.pt",
                                                                   "next-token.safetensors"]
