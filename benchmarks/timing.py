"""The timing loop every benchmark shares: run an action several times, record wall and CPU time.

Scripts take the statistic they report: the median (typical), the maximum (worst case) or the
minimum (least disturbed by other processes). CPU time of this process is what a shared machine
does not inflate.
"""
from __future__ import annotations

import time

import numpy as np


def repeat_timed(action, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Call ``action(i)`` for ``i`` in ``range(repeats)``; returns ``(wall_ms, cpu_ms)``, each
    [shape=(repeats,)]."""
    wall, cpu = [], []
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        action(i)
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return np.array(wall), np.array(cpu)


def median_ms(action, repeats: int = 5) -> float:
    """Median wall milliseconds of ``action()`` over ``repeats`` calls."""
    return float(np.median(repeat_timed(lambda _: action(), repeats)[0]))
