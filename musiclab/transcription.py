"""From a recording to notes: pitch tracking of a sung or played melody (`wav_to_notes`), and how well
a transcription recovers the true notes (`transcription_scores`).

Chapter: notebooks/13_evaluating_generative_models.ipynb
"""
from __future__ import annotations

import numpy as np

from . import audio, metrics, symbolic
from .errors import BadInputError

WAV_SR = 8000  # pitch tracking rate: C7 (2093 Hz, the top of the melody range) is below its 4 kHz Nyquist
WAV_FRAME = 512  # 64 ms pYIN window at 8 kHz: four periods of C2 (65 Hz), the bottom of the range
FRAMES_PER_STEP = 4  # pYIN hop = a quarter of a 16th-note step: 31.25 ms at 120 qpm
MIN_VOICED_PROB = 0.3  # pYIN marks some frames of white noise voiced, with probabilities near 0.01
ONSET_KW = {"lag": 2, "max_size": 3}  # SuperFlux onset strength: flute vibrato is not taken for onsets
ONSET_DELTA = 0.2  # onset-strength peak height, the envelope normalised to 1
REPEAT_ONSET_DB = 5.0  # onset strength (mean rise of the log-mel bands, dB) that re-strikes a sounding pitch


def wav_to_notes(y: np.ndarray, sr: int, qpm: float = 120.0, name: str = "audio") -> list[symbolic.Note]:
    """Mono pitch tracking into notes timed in quarter notes at ``qpm``:

    1. resample to ``WAV_SR`` (8 kHz) and run pYIN (`metrics.f0_frames`) over the melody range
       C2..C7 with semitone bins and ``FRAMES_PER_STEP`` (4) frames per 16th-note step, i.e. 64
       frames a bar whatever the tempo (a 32-bar tune: 2,048 frames, about 0.3 s on one core);
    2. frames with a voicing probability of at least ``MIN_VOICED_PROB`` rounded to MIDI pitches,
       median-filtered over 3 frames; an unvoiced gap shorter than a step after a pitched frame is
       a tracker dropout (pYIN loses decaying piano and guitar notes for a frame or two) and
       continues that pitch;
    3. each run of frames on one pitch is a note, split again at SuperFlux onset-strength peaks
       (Boeck & Widmer 2013) of at least ``REPEAT_ONSET_DB`` that lie at least a step less a frame
       from its ends (a repeated note; the swells of a held flute note stay below); runs shorter
       than half a step are glitches and dropped. A change first seen in frame k happened
       between the centres of frames k - 1 and k: notes start at (k - 1/2) hops.

    A polyphonic recording yields its most salient line only. `transcription_scores` measures the
    result against the true notes (benchmarks/bench_metrics.py).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import librosa
    import scipy.signal

    y = audio.check_audio(y, sr, name)
    if not qpm > 0:
        raise BadInputError(f"{name}: qpm={qpm}: expected quarter notes per minute > 0")
    if sr != WAV_SR:
        y, sr = librosa.resample(y, orig_sr=sr, target_sr=WAV_SR), WAV_SR
    hop = int(np.clip(round(sr * 60 / qpm / symbolic.STEPS_PER_QUARTER / FRAMES_PER_STEP), 1, WAV_FRAME))
    f0 = metrics.f0_frames(y, sr, fmin_hz=librosa.midi_to_hz(symbolic.PITCH_LOW),
                           fmax_hz=librosa.midi_to_hz(symbolic.PITCH_HIGH), frame_length=WAV_FRAME,
                           hop_length=hop, resolution=1.0, min_voiced_prob=MIN_VOICED_PROB)
    midi = np.where(np.isfinite(f0), np.round(librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0))), -1)
    midi = scipy.signal.medfilt(midi, 3).astype(int)
    for start, end in _runs(midi):
        if midi[start] < 0 and 0 < start and end < len(midi) and end - start < FRAMES_PER_STEP:
            midi[start:end] = midi[start - 1]
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_fft=WAV_FRAME, **ONSET_KW)
    peaks = [int(o) for o in librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop,
                                                        delta=ONSET_DELTA) if o < len(midi)]
    boundaries = [start for start, _ in _runs(midi)] + [len(midi)]
    for peak in peaks:
        if (midi[peak] >= 0 and envelope[peak] >= REPEAT_ONSET_DB
                and min(abs(peak - b) for b in boundaries) >= FRAMES_PER_STEP - 1):
            boundaries.append(peak)
    boundaries = sorted(boundaries)
    frame_quarters = hop / sr * qpm / 60
    notes = [symbolic.Note(int(np.clip(midi[start], symbolic.PITCH_LOW, symbolic.PITCH_HIGH)),
                           max(start - 0.5, 0) * frame_quarters, (end - max(start, 0.5)) * frame_quarters)
             for start, end in zip(boundaries[:-1], boundaries[1:])
             if midi[start] >= 0 and 2 * (end - start) >= FRAMES_PER_STEP]
    if not notes:
        raise BadInputError(f"{name}: no pitched notes found (noise or percussion?); a sung or played "
                            f"melody is needed")
    return notes


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of equal values in ``values`` [shape=(n,)]."""
    edges = np.flatnonzero(np.diff(values)) + 1
    return list(zip(np.r_[0, edges].tolist(), np.r_[edges, len(values)].tolist()))


def transcription_scores(true_grid, grid, tolerance_steps: int = 1) -> dict:
    """How well a transcribed grid recovers a true one (both [shape=(T,)], 16th-note steps):

    - ``onset_precision``, ``onset_recall``, ``onset_f1``: note onsets matched one-to-one, in time
      order, when they differ by at most ``tolerance_steps`` (F1 = 2PR / (P + R); in time order
      the greedy matching is a largest one);
    - ``pitch_accuracy``: the share of matched notes with the true pitch;
    - ``voiced_recall``: the share of steps where a true note sounds and the transcription sounds
      some note (durations; `symbolic.sounding_tokens`).

    Example: true notes at steps 0, 4, 8 and transcribed ones at 1 (same pitch), 8 (another pitch)
    and 12: precision 2/3, recall 2/3, pitch accuracy 1/2.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    def onsets(g):
        sounding = symbolic.sounding_tokens(g)
        return [(step, sounding[step]) for step in np.flatnonzero(np.asarray(g) >= 2)]

    true, found = onsets(true_grid), onsets(grid)
    i = j = matched = same_pitch = 0
    while i < len(true) and j < len(found):
        if abs(true[i][0] - found[j][0]) <= tolerance_steps:
            matched, same_pitch = matched + 1, same_pitch + int(true[i][1] == found[j][1])
            i, j = i + 1, j + 1
        elif found[j][0] < true[i][0]:
            j += 1
        else:
            i += 1
    precision, recall = matched / max(len(found), 1), matched / max(len(true), 1)
    length = max(len(true_grid), len(grid))
    true_sounding, found_sounding = (np.pad(symbolic.sounding_tokens(g), (0, length - len(g))) for g in (true_grid, grid))
    return {"onset_precision": precision, "onset_recall": recall,
            "onset_f1": 2 * precision * recall / (precision + recall) if matched else 0.0,
            "pitch_accuracy": same_pitch / matched if matched else float("nan"),
            "voiced_recall": float(np.mean(found_sounding[true_sounding >= 2] >= 2)) if len(true) else float("nan")}
