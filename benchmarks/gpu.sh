#!/usr/bin/env bash
# On a machine with a CUDA GPU, in one call (about 9 minutes): train every recipe of
# `musiclab.recipes.RECIPES` in full mode, check DistributedDataParallel with nccl, execute one
# chapter notebook in full mode, and print a Markdown table for benchmarks/README.md.
#
#   bash benchmarks/gpu.sh              # the GPU run; keeps the weights in runs/gpu-DATE/
#   bash benchmarks/gpu.sh --dry-run    # the same steps on a CPU: quick mode, 2 steps each, gloo,
#                                       # no notebook, outputs in a temporary folder
#
# Settings (environment): PYTHON (default .venv/bin/python, else python3); GPU_STEPS, the optimizer
# steps of each recipe (default 500; a row says "shortened" when the shipped full-mode weights took
# more); GPU_BUDGET_S, the wall-clock budget of the runs (default 540 s): each run gets an equal
# share of what is left and a run that overstays it is stopped and reported as such. On a machine
# without the full-mode data caches the script builds them first (about 5 min on 2 cores), outside
# the budget; `python -m musiclab data --mode full` beforehand does the same;
# GPU_NOTEBOOK, the chapter executed in full mode (default notebooks/02_learning_to_generate.ipynb).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu.sh [--dry-run]" >&2; exit 2 ;;
esac

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
BUDGET_S=${GPU_BUDGET_S:-540}
NOTEBOOK=${GPU_NOTEBOOK:-notebooks/02_learning_to_generate.ipynb}

if [ "$DRY_RUN" = 1 ]; then
  export MUSICLAB_MODE=quick OMP_NUM_THREADS=1
  STEPS=2
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
else
  export MUSICLAB_MODE=full
  STEPS=${GPU_STEPS:-500}
  OUT=runs/gpu-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$OUT"
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "no CUDA GPU visible to $PYTHON; run 'bash benchmarks/gpu.sh --dry-run' to check the script on a CPU" >&2
    exit 2; }
fi
RESULTS=$OUT/results.tsv  # name, exit code, wall seconds, output folder, note
: >"$RESULTS"

# Run "$@" with a share of the remaining budget; append a row to RESULTS.
timed_run() {
  local name=$1 out=$2 share=$3; shift 3
  local left=$(( DEADLINE - $(date +%s) ))
  local limit=$(( left / share ))
  [ "$limit" -ge 5 ] || limit=5
  local start rc=0 note=""
  start=$(date +%s%N)
  timeout -k 10 "$limit" "$@" >"$out.log" 2>&1 || rc=$?
  local wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note="stopped after its ${limit} s share of the budget"; fi
  printf '%s\t%s\t%d.%d\t%s\t%s\n' "$name" "$rc" $(( wall_ms / 1000 )) $(( wall_ms % 1000 / 100 )) "$out" "$note" \
    >>"$RESULTS"
  [ "$rc" = 0 ] || { echo "$name failed (exit $rc); last lines of $out.log:" >&2; tail -5 "$out.log" >&2; }
}

if [ "$DRY_RUN" = 0 ]; then  # full-mode caches: built once per machine, skipped when present
  DEADLINE=$(( $(date +%s) + 3600 ))
  timed_run data "$OUT/data" 1 "$PYTHON" -m musiclab data --mode full --quiet
fi
DEADLINE=$(( $(date +%s) + BUDGET_S ))

mapfile -t NAMES < <("$PYTHON" -c "from musiclab.recipes import RECIPES; print('\n'.join(RECIPES))")
n_left=$(( ${#NAMES[@]} + 2 ))  # the recipes, the DDP check and the notebook share the budget
for name in "${NAMES[@]}"; do
  timed_run "$name" "$OUT/$name" "$n_left" "$PYTHON" -m musiclab train "$name" --steps "$STEPS" --out "$OUT/$name"
  n_left=$(( n_left - 1 ))
done

# DDP: two processes (nccl with two GPUs, gloo on a CPU) train like one process with the same global
# batch; a single GPU runs one process under torchrun (no process group to check).
NPROC=$("$PYTHON" -c "import torch; print(1 if torch.cuda.device_count() == 1 else 2)")
mkdir -p "$OUT/ddp"
ddp_check() {
  cd "$OUT/ddp"
  "$PYTHON" "$ROOT/tests/ddp_worker.py" next-token 64 one
  "$PYTHON" -m torch.distributed.run --nproc_per_node="$NPROC" --standalone "$ROOT/tests/ddp_worker.py" \
    next-token $(( 64 / NPROC )) many
  "$PYTHON" - <<'EOF'
import json
one, many = (json.load(open(name)) for name in ("one.rank0.json", "many.rank0.json"))
losses = [[row["train_nll"] for row in run["history"]] for run in (one, many)]
gap = max(abs(a - b) / abs(a) for a, b in zip(*losses))
print(f"{many['world_size']} processes, {len(losses[1])} steps, largest relative loss gap {gap:.1e}")
assert gap < 1e-3, "the processes do not train like one process"
EOF
}
export -f ddp_check
export OUT ROOT PYTHON NPROC
timed_run ddp "$OUT/ddp" "$n_left" bash -c ddp_check
n_left=$(( n_left - 1 ))

if [ "$DRY_RUN" = 0 ]; then
  timed_run notebook "$OUT/notebook" "$n_left" "$PYTHON" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=-1 --output-dir "$OUT" "$NOTEBOOK"
fi

"$PYTHON" - "$RESULTS" "$STEPS" "$NPROC" "$NOTEBOOK" <<'EOF'
"""The Markdown table: one row per recipe (steps, wall time, key metric from the sidecar, device)."""
import json
import re
import sys
from pathlib import Path

import torch

results, steps, nproc, notebook = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
shipped = Path("musiclab/checkpoints")
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


# where a recipe's first held-out score is a baseline or a partial view, the score its chapter reports
CHAPTER_METRIC = {"cyclegan-symbolic": "test_strength_a_to_b", "mtnn": "test_full_region_accuracy",
                  "vae-melody": "test_greedy"}


def key_metric(name: str, metrics: dict) -> str:
    """The chapter's score, else the first held-out one (valid_, test_, held_out_), else the first number."""
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "steps"}
    held_out = [k for k in numbers if re.match(r"(valid|test|held_out)_", k)]
    key = next((k for k in [CHAPTER_METRIC.get(name)] + held_out + list(numbers) if k in numbers), None)
    return f"{key} {numbers[key]:.4g}" if key else "-"


print("| run | steps | wall time | key metric | device |")
print("| --- | --- | --- | --- | --- |")
for line in Path(results).read_text().splitlines():
    name, rc, wall, out, note = line.split("\t")
    status = "" if rc == "0" else f" (failed, exit {rc}: {note or 'see ' + out + '.log'})"
    if name == "data":
        print(f"| full-mode data caches | - | {wall} s{status} | - | cpu |")
    elif name == "ddp":
        log = Path(out + ".log").read_text() if Path(out + ".log").exists() else ""
        found = re.search(r"(\d+) processes, (\d+) steps, (largest relative loss gap \S+)", log)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        processes = f"{nproc} process{'es' if nproc > 1 else ''}"
        print(f"| DDP, {processes} against one, {backend} | {found.group(2) if found else '-'} | {wall} s{status} | "
              f"{found.group(3) if found else '-'} | {gpu} |")
    elif name == "notebook":
        print(f"| `{notebook}`, full mode | - | {wall} s{status} | - | {gpu} |")
    else:
        # a recipe may name its weights after what it trained (ddsp -> ddsp-clarinet.json)
        sidecar = next(iter(sorted(Path(out).glob(f"{name}*.json"))), Path(out) / f"{name}.json")
        meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        full = json.loads((shipped / f"{name}.json").read_text()).get("metrics", {}).get("steps") \
            if (shipped / f"{name}.json").exists() else None
        shipped_steps = (f"shortened: the shipped weights took {full:,}" if full > steps else f"shipped: {full:,}"
                         ) if full else "no shipped weights to compare"
        print(f"| {name} | {steps:,} ({shipped_steps}) | {wall} s{status} | "
              f"{key_metric(name, meta.get('metrics', {}))} | {meta.get('device', '-')} |")
EOF
