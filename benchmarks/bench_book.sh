#!/usr/bin/env bash
# Time `make book` on a fresh clone with a fresh data cache (cold), then again unchanged (warm).
#   bash benchmarks/bench_book.sh
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/book"
cd "$work/book"
export MUSICLAB_CACHE="$work/cache"
start=$(date +%s); make book >"$work/cold.log" 2>&1; cold=$(( $(date +%s) - start ))
start=$(date +%s); make book >"$work/warm.log" 2>&1; warm=$(( $(date +%s) - start ))
echo "make book, cold (venv + data + execute + HTML): ${cold} s"
echo "make book, warm (nothing changed):              ${warm} s"
