"""Chapter 13: evaluating an uploaded 32-bar tune (bar: at most 1 s on CPU), and the leaderboard.

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py                 # upload timings, transcription
    MUSICLAB_MODE=full OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --seed 2   # another draw of tunes
    MUSICLAB_MODE=full OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py --leaderboard

Upload timings: a 32-bar held-out tune (the first 512 steps of the test tune with the most notes in
them) written as MIDI and as a WAV rendering, read and evaluated by `upload.evaluate_upload` as
the widget does. Loading the evaluators (the multi-task network, the melody RNN and its scores of
the held-out tunes for the typicality percentile, a warm-up of the WAV tracker) happens once, when the widget is built; "first upload" is
then the first evaluation (it builds the corpus reference of the region); "new corpus" is the first
call for another region; "warm" is the median of 10 repeated calls.
The WAV upload (median of 5) is also timed without the evaluation: reading and pitch tracking
(`upload.read_piece`, `transcription.wav_to_notes`).

Transcription accuracy (the WAV path): the first 8 bars of 24 held-out tunes (drawn with --seed),
rendered at 120 qpm with the SoundFont on flute, piano, violin and guitar in turn, written as WAV
and read back by `upload.read_piece`; `transcription.transcription_scores` against the true grid
(onsets within one 16th-note step; pitch accuracy of the matched notes; share of sounding steps
transcribed as sounding), with the tracker's time per 64 s of audio.
The leaderboard is chapter 13's, at the mode's set size (30 quick, 300 full).
"""
import argparse
import time

import numpy as np
import torch

from musiclab import audio, config, datasets, leaderboard, metrics, recipes, symbolic, transcription, upload, weights
from musiclab.models import mtnn, ngram


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def upload_timings(n_bars: int = 32) -> None:
    long_tunes = [t for t in datasets.load_folk("test", progress=False) if len(t.grid) >= 16 * n_bars]
    if not long_tunes:
        raise SystemExit(f"no held-out tune has {n_bars} bars in this mode")
    tune = max(long_tunes, key=lambda t: np.count_nonzero(t.grid[:16 * n_bars] >= 2))  # the busiest one
    grid = tune.grid[:16 * n_bars]
    notes = symbolic.grid_to_notes(grid)
    midi_bytes = _midi_bytes(notes)
    print(f"tune: {tune.id} ({tune.region}), first {n_bars} bars, {len(notes)} notes")
    _, load_s = timed(upload.load_evaluators)
    print(f"loading the evaluators (as the widget does when it is built): {load_s:.2f} s")
    (text, _, report), cold = timed(lambda: upload.evaluate_upload(midi_bytes, "tune.mid", tune.region))
    assert report is not None, text
    other = "German" if tune.region != "German" else "Irish"
    _, new_corpus = timed(lambda: upload.evaluate_upload(midi_bytes, "tune.mid", other))
    warm = [timed(lambda: upload.evaluate_upload(midi_bytes, "tune.mid", tune.region))[1] for _ in range(10)]
    print(f"MIDI upload, {n_bars} bars: first upload {cold:.2f} s, new corpus {new_corpus:.2f} s, "
          f"warm median {np.median(warm) * 1000:.0f} ms (max {max(warm) * 1000:.0f} ms)")
    y = audio.render_notes(notes, program=73, qpm=120)
    wav = _wav_bytes(y)
    wav_times = [timed(lambda: upload.evaluate_upload(wav, "tune.wav", tune.region))[1] for _ in range(5)]
    read_times = [timed(lambda: upload.read_piece(wav, "tune.wav"))[1] for _ in range(5)]
    print(f"WAV upload, {len(y) / audio.DEFAULT_SR:.0f} s of audio: median {np.median(wav_times):.2f} s "
          f"(max {max(wav_times):.2f} s), of which reading and pitch tracking {np.median(read_times):.2f} s")


INSTRUMENTS = {73: "flute", 0: "piano", 40: "violin", 24: "guitar"}


def transcription_accuracy(transcribe=None, n_tunes: int = 24, n_bars: int = 8, seed: int = 0) -> dict:
    """Mean `transcription.transcription_scores` of ``transcribe(wav_bytes) -> grid`` (default: the
    upload path, `upload.read_piece`) on SoundFont renderings of held-out tunes, per instrument
    and in all, and the transcription time per 64 s of audio; tunes drawn with ``seed``."""
    transcribe = transcribe or (lambda wav: upload.read_piece(wav, "tune.wav", qpm=120))
    tunes = [t for t in datasets.load_folk("test", progress=False) if np.any(t.grid[:16 * n_bars] >= 2)]
    picks = np.random.default_rng(seed).choice(len(tunes), min(n_tunes, len(tunes)), replace=False)
    rows, seconds, audio_s = {name: [] for name in INSTRUMENTS.values()}, 0.0, 0.0
    for k, i in enumerate(picks):
        program = list(INSTRUMENTS)[k % len(INSTRUMENTS)]
        true_grid = tunes[i].grid[:16 * n_bars]
        y = audio.render_notes(symbolic.grid_to_notes(true_grid), program=program, qpm=120)
        wav = _wav_bytes(y)
        grid, took = timed(lambda: transcribe(wav))
        seconds, audio_s = seconds + took, audio_s + len(y) / audio.DEFAULT_SR
        rows[INSTRUMENTS[program]].append(transcription.transcription_scores(true_grid, grid))
    rows["all"] = [row for name in INSTRUMENTS.values() for row in rows[name]]
    print(f"transcription of {len(picks)} held-out tunes (seed {seed}), first {n_bars} bars each ({audio_s:.0f} s of audio), "
          f"{seconds / audio_s * 64:.2f} s per 64 s of audio")
    print("| instrument | tunes | onset F1 | pitch accuracy | voiced steps |")
    print("| --- | --- | --- | --- | --- |")
    means = {}
    for name, scores in rows.items():
        means[name] = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
        m = means[name]
        print(f"| {name} | {len(scores)} | {m['onset_f1']:.3f} | {m['pitch_accuracy']:.3f} | {m['voiced_recall']:.3f} |")
    return means


def _midi_bytes(notes) -> bytes:
    import io

    buffer = io.BytesIO()
    symbolic.notes_to_midi(notes).write(buffer)
    return buffer.getvalue()


def _wav_bytes(y) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, y, audio.DEFAULT_SR, format="WAV")
    return buffer.getvalue()


def print_leaderboard(n: int, real_draws: int = 4, next_token_steps: int | None = None) -> None:
    train_tunes, test_tunes = datasets.load_folk("train"), datasets.load_folk("test")
    held_out = [t.grid for t in test_tunes]
    index = metrics.ngram_index([t.grid for t in train_tunes], n=8, transposition_invariant=True)
    embed = mtnn.load_pretrained().embed
    rng = np.random.default_rng(0)
    conditions = [(test_tunes[i].region, test_tunes[i].tune_type) for i in rng.choice(len(test_tunes), n)]
    run, train_s = timed(lambda: recipes.next_token.train_next_token(out_dir="/tmp/bench-metrics", restart=True,
                                                           steps=next_token_steps or config.pick(400, 4000)))
    next_token, _ = weights.load_weights(run["weights"], "next-token", ngram.NextTokenMLP, ngram.NextTokenConfig)
    print(f"next-token model: {run['steps']} steps in {train_s:.0f} s, valid NLL {run['valid_nll']:.3f}")
    tables = {
        8: leaderboard.leaderboard(
            leaderboard.excerpts(held_out, 8, n, seed=0),
            {"melody RNN (ch. 4)": leaderboard.melody_rnn_samples(conditions, 8, seed=0),
             "next-token MLP (ch. 2)": leaderboard.next_token_samples(next_token, n, 8, seed=0)},
            [leaderboard.excerpts([t.grid for t in train_tunes], 8, n, seed=k) for k in range(1, real_draws + 1)],
            index, embed),
        2: leaderboard.leaderboard(
            leaderboard.transposed_phrases(test_tunes, n, seed=0),
            {"melody VAE prior (ch. 6)": leaderboard.vae_prior_samples(n, seed=0)},
            [leaderboard.transposed_phrases(train_tunes, n, seed=k) for k in range(1, real_draws + 1)],
            index, embed)}
    print(f"| bars | set (N = {n}) | overlap | KL (nats) | Frechet (MTNN) | copy rate, 8 notes | notes per bar |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for bars, rows in tables.items():
        for name, row in rows.items():
            spread = row.get("spread", {})
            cell = lambda key, fmt: f"{row[key]:{fmt}}" + (f" ({spread[key]:{fmt}})" if key in spread else "")
            print(f"| {bars} | {name} | {cell('overlap', '.3f')} | {cell('kl', '.3f')} | {cell('frechet', '.1f')} "
                  f"| {row['copy_rate']:.1%} | {row['notes_per_bar']:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaderboard", action="store_true", help="compute chapter 13's leaderboard too")
    parser.add_argument("--n", type=int, default=None, help="pieces per set (default 30 quick, 300 full)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="draw of held-out tunes for the transcription check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"mode {config.get_mode()}, {args.threads} torch thread(s)")
    upload_timings()
    transcription_accuracy(seed=args.seed)
    if args.leaderboard:
        start = time.perf_counter()
        print_leaderboard(args.n or config.pick(30, 300))
        print(f"leaderboard: {time.perf_counter() - start:.0f} s")
