"""`benchmarks/gpu.sh --dry-run` on a CPU: every recipe trains a few steps in quick mode, the gloo DDP
check passes, and the Markdown table has one row per recipe with its metric from the sidecar."""
import os
import subprocess
import sys

from conftest import ROOT


def test_gpu_script_dry_run_reports_every_recipe():
    from musiclab.recipes import RECIPES

    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run"], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0][0] == "| run" and rows[1][0] == "| ---"
    by_name = {row[0].removeprefix("| "): row for row in rows[2:]}
    assert set(RECIPES) <= set(by_name), f"rows missing: {set(RECIPES) - set(by_name)}"
    for name in RECIPES:
        steps, wall, metric, device = by_name[name][1:]
        assert steps.startswith("2 (") and "failed" not in wall and device == "cpu |", by_name[name]
    assert any(by_name[name][3] != "-" for name in RECIPES)  # metrics were read from the sidecars
    [ddp] = [row for name, row in by_name.items() if name.startswith("DDP, 2 processes")]
    gap = float(ddp[3].rsplit(" ", 1)[-1])
    assert gap < 1e-3 and "failed" not in ddp[2]
