"""SoundFont rendering speed, as a real-time factor (seconds of audio per second of wall time).

    PYTHONPATH=. python benchmarks/bench_render.py [--sr 16000] [--repeats 5]

Prints one table and writes nothing. The book needs at least 100x real time, so that a dataset
of thousands of notes renders in seconds on a laptop CPU.
"""
import argparse

import numpy as np

from musiclab import audio
from timing import repeat_timed  # benchmarks/timing.py


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", type=int, default=audio.DEFAULT_SR)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sr = args.sr
    audio.render_note(60, sr=sr)  # load the SoundFont once, outside the timings

    pitches = list(range(48, 72))
    melody = [(pitches[i % 24], 0.5 * i, 0.5, 90) for i in range(120)]  # 60 quarters = 30 s
    cases = [
        ("single notes (24 x 1.25 s, flute)",
         lambda: np.stack([audio.render_note(p, program=73, sr=sr) for p in pitches])),
        ("30 s melody (violin)", lambda: audio.render_notes(melody, program=40, sr=sr, tail_s=0)),
        ("one-shot set (4 programs x 24 pitches)",
         lambda: audio.one_shot_note_set([0, 24, 40, 73], pitches, sr=sr)["y"]),
    ]
    print(f"SoundFont rendering at sr={sr} Hz, best of {args.repeats}")
    print(f"{'case':<42}{'audio s':>9}{'wall s':>9}{'x real time':>13}")
    for name, work in cases:
        audio_s = work().size / sr
        wall_s = repeat_timed(lambda _: work(), args.repeats)[0].min() / 1000  # least disturbed run
        print(f"{name:<42}{audio_s:>9.1f}{wall_s:>9.3f}{audio_s / wall_s:>13.0f}")


if __name__ == "__main__":
    main()
