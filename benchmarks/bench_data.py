"""Time a cold build of the data caches (fresh cache folder) and a warm load; print the counts.

    MUSICLAB_MODE=full python benchmarks/bench_data.py      # everything (bar: <= 10 min on 2 cores)
    MUSICLAB_MODE=quick python benchmarks/bench_data.py     # the quick-mode subset

The cache goes to a new temporary folder, so the build is always cold; pass ``--keep`` to leave it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache folder")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="musiclab-bench-")
    os.environ["MUSICLAB_CACHE"] = cache  # before importing musiclab, so nothing reads the user's cache
    from musiclab import config, datasets

    print(f"mode={config.get_mode()} cpus={os.cpu_count()} cache={cache}")
    t0 = time.perf_counter()
    report = datasets.build_all(progress=True)
    cold_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    tunes = datasets.load_folk()
    chorales = datasets.load_chorales()
    warm_s = time.perf_counter() - t0

    print(datasets.format_table(datasets.summarize(tunes)))
    print(json.dumps(report, indent=1))
    print(f"cold build: {cold_s:.1f} s (folk {report['folk']['build_s']} s, "
          f"chorales {report['chorales']['build_s']} s)")
    print(f"warm load:  {warm_s:.2f} s ({len(tunes)} tunes, {len(chorales)} chorales)")
    if not args.keep:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
