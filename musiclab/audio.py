"""Audio: SoundFont rendering, load and save, spectrograms, Griffin-Lim, pitch and loudness, mu-law,
players.

Names follow librosa (``y``, ``sr``, ``n_fft``, ``hop_length``, ``n_mels``). Mono audio is
``y [shape=(n,)]``, float32, full scale at 1.0. The book's audio is rendered from notes with the
General MIDI SoundFont ``TimGM6mb.sf2`` that ships inside ``pretty_midi``, by ``tinysoundfont``.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import base64
import functools
import html
import io
import math
import re
import threading
from pathlib import Path

import librosa
import numpy as np
import pretty_midi
import soundfile
import torch

from . import fileio
from .errors import BadInputError, MusiclabError

DEFAULT_SR = 16000
SOUNDFONT_PATH = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
PROGRAM_NAMES = {
    0: "Acoustic Grand Piano", 11: "Vibraphone", 19: "Church Organ",
    24: "Acoustic Guitar (nylon)", 32: "Acoustic Bass", 40: "Violin", 56: "Trumpet",
    71: "Clarinet", 73: "Flute", 105: "Banjo",
}
SILENCE_PEAK = 1e-4  # below this peak a clip counts as silent
LOG_FLOOR = 1e-5  # magnitudes are clamped here before the log: log(1e-5) = -11.5, about -100 dB
_PLAYER_PEAK = 10 ** (-1 / 20)  # -1 dBFS
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# libsndfile's compression level for the players (0 = best quality, 1 = smallest). At 16 kHz, 0.8
# (LAME VBR) is 24-30 kbit/s against 32-54 at the default 0, and stays as close to the original
# (log-mel distance within 0.6 dB of the default's); above 0.9 LAME cuts the band above 4 kHz.
# benchmarks/README.md ("A lighter HTML book") has the figures; tests/test_audio.py checks them.
PLAYER_COMPRESSION = 0.8
_FILE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
# tinysoundfont's Synth keeps voice state; one lock keeps renders from interleaving on it.
_SYNTH_LOCK = threading.Lock()


# Validation ---------------------------------------------------------------------------------

def _as_int(value, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
        integral = number == value
    except (TypeError, ValueError):
        integral = False
    if not integral or isinstance(value, bool) or not low <= number <= high:
        raise BadInputError(f"{name}={value!r}: expected an integer in [{low}, {high}]")
    return number


def _as_array(y, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        raise BadInputError(f"{name}: empty (no samples)")
    if not np.all(np.isfinite(y)):
        raise BadInputError(f"{name}: contains NaN or infinite samples")
    return y


def check_audio(y, sr, name: str = "audio", *, ndim: int = 1, allow_silence: bool = False):
    """Return ``y`` [shape=(n,)] (``ndim=1``) as float32 NumPy, or raise ``BadInputError``.

    Refuses empty audio, NaN or infinite samples, silence (peak < ``SILENCE_PEAK``, unless
    ``allow_silence``), another number of dimensions than ``ndim``, and ``sr`` outside
    [1000, 384000] Hz. ``name`` (a file, an argument) starts every message. Accepts tensors.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    _as_int(sr, f"{name}: sr", 1000, 384000)
    y = _as_array(y, name)
    if y.ndim != ndim:
        raise BadInputError(f"{name}: expected {ndim}-D audio, got shape {y.shape}")
    if not allow_silence and np.abs(y).max() < SILENCE_PEAK:
        raise BadInputError(f"{name}: silent (peak {np.abs(y).max():.1e} < {SILENCE_PEAK:.0e})")
    return y


def require_sr(sr, expected: int, name: str = "audio") -> None:
    """Raise ``BadInputError`` unless ``sr == expected``, saying how to resample.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if sr != expected:
        raise BadInputError(f"{name}: expected {expected} Hz, got {sr} Hz; "
                            f"resample with load_audio(path, sr={expected})")


# SoundFont rendering --------------------------------------------------------------------------

def program_name(program: int) -> str:
    """Return the General MIDI name of ``program`` (0-127), e.g. 73 -> "Flute".

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return pretty_midi.program_to_instrument_name(_as_int(program, "program", 0, 127))


@functools.lru_cache(maxsize=4)
def _load_synth(sr: int):
    try:
        import tinysoundfont
    except ImportError as err:
        raise MusiclabError("SoundFont rendering needs tinysoundfont: "
                            "pip install --no-deps tinysoundfont==0.3.7") from err
    synth = tinysoundfont.Synth(samplerate=sr)
    return synth, synth.sfload(str(SOUNDFONT_PATH))


def _render_events(events, program: int, n: int, sr: int) -> np.ndarray:
    """Render sorted ``(sample, is_on, pitch, velocity)`` events into ``n`` mono samples."""
    synth, sfid = _load_synth(sr)
    frame_bytes = 8  # stereo float32
    buffer = memoryview(bytearray(n * frame_bytes))
    with _SYNTH_LOCK:
        # sounds_off fades voices over ~10 ms instead of cutting them: run the synth until it is
        # exactly silent, so that every render starts from the state of a fresh synth.
        synth.sounds_off()
        flush = memoryview(bytearray(512 * frame_bytes))
        for _ in range(sr // 512 + 1):
            if not np.any(np.frombuffer(synth.generate_simple(512, buffer=flush), np.float32)):
                break
        else:
            raise MusiclabError("the SoundFont synth did not fall silent within 1 s of sounds_off")
        synth.program_select(0, sfid, 0, program)
        position = 0
        for sample, is_on, pitch, velocity in events:
            sample = min(sample, n)
            if sample > position:
                synth.generate_simple(sample - position,
                                      buffer=buffer[position * frame_bytes:sample * frame_bytes])
                position = sample
            if is_on:
                synth.noteon(0, pitch, velocity)
            else:
                synth.noteoff(0, pitch)
        if n > position:
            synth.generate_simple(n - position, buffer=buffer[position * frame_bytes:])
    return np.frombuffer(buffer, dtype=np.float32).reshape(n, 2).mean(axis=1)


def _render_note(pitch, program, velocity, duration_s, release_s, sr) -> np.ndarray:
    program, sr = _as_int(program, "program", 0, 127), _as_int(sr, "sr", 1000, 384000)
    pitch = _as_int(pitch, "pitch", 0, 127)
    velocity = _as_int(velocity, "velocity", 1, 127)
    if not duration_s > 0 or not release_s >= 0:
        raise BadInputError(f"duration_s={duration_s}, release_s={release_s}: "
                            "expected duration_s > 0 and release_s >= 0")
    events = [(0, True, pitch, velocity), (max(1, round(duration_s * sr)), False, pitch, 0)]
    return _render_events(events, program, round((duration_s + release_s) * sr), sr)


def _raise_if_silent(y, what: str) -> None:
    if np.abs(y).max() < SILENCE_PEAK:
        raise BadInputError(f"{what} renders silent: the SoundFont has no sample there")


def render_note(pitch: int, program: int = 0, velocity: int = 100, duration_s: float = 1.0,
                release_s: float = 0.25, sr: int = DEFAULT_SR) -> np.ndarray:
    """Render one note: held for ``duration_s``, then released for ``release_s``.

    Returns ``y`` [shape=(round((duration_s + release_s) * sr),)], float32, mono, not
    normalised (velocity stays audible in the level). A note the SoundFont cannot play raises
    ``BadInputError`` (it renders silent: most presets stop at pitch 108, 65 lacks pitch 64).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    y = _render_note(pitch, program, velocity, duration_s, release_s, sr)
    _raise_if_silent(y, f"program {program} ({program_name(program)}) at pitch {pitch}")
    return y


def note_spans(notes, qpm: float = 120, sr: int = DEFAULT_SR) -> np.ndarray:
    """Where `render_notes` plays each note: rows ``(on_sample, off_sample, pitch, velocity)``
    [shape=(n_notes, 4)] int64, in the order given; ``notes`` are ``(pitch, start, duration,
    velocity)`` in quarter notes at ``qpm``. A note-off never lands on its own note-on sample.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    if not qpm > 0:
        raise BadInputError(f"qpm={qpm}: expected quarter notes per minute > 0")
    rows = [tuple(note) for note in notes]
    if not rows or any(len(row) != 4 for row in rows):
        raise BadInputError("notes: expected a non-empty sequence of "
                            "(pitch, start, duration, velocity) notes")
    pitch, start, duration, velocity = np.asarray(rows, dtype=np.float64).T
    if not (np.all(np.isin(pitch, np.arange(128))) and np.all(np.isin(velocity, np.arange(1, 128)))
            and np.all(start >= 0) and np.all(duration > 0)):
        raise BadInputError("notes: expected integer pitch 0-127, velocity 1-127, start >= 0 and "
                            "duration > 0 (in quarter notes)")
    samples_per_quarter = 60.0 / qpm * sr
    on = np.round(start * samples_per_quarter).astype(np.int64)
    # a note-off never lands on its own note-on sample, which would leave the note hanging
    off = np.maximum(np.round((start + duration) * samples_per_quarter).astype(np.int64), on + 1)
    return np.stack([on, off, pitch.astype(np.int64), velocity.astype(np.int64)], axis=1)


def _note_events(notes, qpm: float, sr: int):
    """Sorted note on/off events in samples, and the sample of the last note-off."""
    spans = note_spans(notes, qpm, sr)
    # at equal times note-offs (False) sort before note-ons, so repeated pitches re-strike
    events = sorted([(int(on), True, int(p), int(v)) for on, _, p, v in spans]
                    + [(int(off), False, int(p), 0) for _, off, p, _ in spans])
    return events, int(spans[:, 1].max())


def render_notes(notes, program: int = 0, qpm: float = 120, sr: int = DEFAULT_SR,
                 tail_s: float = 0.5) -> np.ndarray:
    """Render notes (a melody or any polyphony) on one General MIDI instrument.

    ``notes`` are ``(pitch, start, duration, velocity)`` with start and duration in quarter
    notes (e.g. ``symbolic.Note``); ``qpm`` is the tempo in quarter notes per minute;
    ``tail_s`` lets the last release ring out. Events are sample-accurate: a note starts at
    sample ``round(start * 60 / qpm * sr)``. A result that is entirely silent raises.

    Returns ``y`` [shape=(last_note_off_sample + round(tail_s * sr),)], float32, mono.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    program, sr = _as_int(program, "program", 0, 127), _as_int(sr, "sr", 1000, 384000)
    if not tail_s >= 0:
        raise BadInputError(f"tail_s={tail_s}: expected >= 0")
    events, end = _note_events(notes, qpm, sr)
    y = _render_events(events, program, end + round(tail_s * sr), sr)
    _raise_if_silent(y, f"notes on program {program} ({program_name(program)})")
    return y


def render_paired(notes, programs, qpm: float = 120, sr: int = DEFAULT_SR,
                  tail_s: float = 0.5) -> np.ndarray:
    """Render the same notes on several instruments: paired audio for timbre transfer.

    Returns ``y`` [shape=(len(programs), n)], float32; row ``i`` is ``render_notes`` on
    ``programs[i]``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if len(programs) == 0:
        raise BadInputError("programs: expected at least one General MIDI program")
    return np.stack([render_notes(notes, program, qpm, sr, tail_s) for program in programs])


def one_shot_note_set(programs, pitches, velocities=(100,), duration_s: float = 1.0,
                      release_s: float = 0.25, sr: int = DEFAULT_SR,
                      drop_silent: bool = False) -> dict:
    """Render every (program, pitch, velocity) as a labelled one-shot note (NSynth-like).

    Some presets have no samples at some pitches (most above pitch 108). By default such a
    note raises ``BadInputError`` naming it; ``drop_silent=True`` leaves it out instead, and
    the label arrays stay aligned with ``y``.

    Returns a dict: ``y`` [shape=(N, n)] float32, ``program``, ``pitch``, ``velocity`` (int64
    [shape=(N,)]) and ``sr``; rows ordered programs x pitches x velocities, and
    ``n = round((duration_s + release_s) * sr)``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    clips, labels = [], []
    for program in programs:
        for pitch in pitches:
            for velocity in velocities:
                y = _render_note(pitch, program, velocity, duration_s, release_s, sr)
                if np.abs(y).max() < SILENCE_PEAK and drop_silent:
                    continue
                _raise_if_silent(y, f"program {program} ({program_name(program)}) at pitch "
                                 f"{pitch}, velocity {velocity} (pass drop_silent=True to skip)")
                clips.append(y)
                labels.append((int(program), int(pitch), int(velocity)))
    if not clips:
        raise BadInputError("one_shot_note_set: no (program, pitch, velocity) renders sound")
    program, pitch, velocity = np.asarray(labels, dtype=np.int64).T
    return {"y": np.stack(clips), "program": program, "pitch": pitch, "velocity": velocity,
            "sr": sr}


# Spectrograms ---------------------------------------------------------------------------------

def stft(y, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Short-time Fourier transform (Hann window, centred frames), as ``librosa.stft``.

    Returns ``S`` [shape=(..., 1 + n_fft // 2, T)], complex64, with ``T = 1 + n // hop_length``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return librosa.stft(_as_array(y, "y"), n_fft=n_fft, hop_length=hop_length)


def log_magnitude(y, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Natural log of the STFT magnitude, floored at ``LOG_FLOOR`` (1e-5, about -100 dB).

    Returns ``log(max(|S|, 1e-5))`` [shape=(..., 1 + n_fft // 2, T)].

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return np.log(np.maximum(np.abs(stft(y, n_fft, hop_length)), LOG_FLOOR))


def log_mel(y, sr: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 80,
            fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Log mel spectrogram: ``log(max(M |S|, 1e-5))`` with ``M`` the Slaney mel filterbank.

    The bands pool STFT *magnitudes* (power 1, as in HiFi-GAN); the floor ``LOG_FLOOR`` (1e-5,
    about -100 dB) keeps silence finite. Returns [shape=(..., n_mels, T)], float32.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    mel = librosa.feature.melspectrogram(y=_as_array(y, "y"), sr=sr, n_fft=n_fft,
                                         hop_length=hop_length, n_mels=n_mels, fmin=fmin,
                                         fmax=fmax, power=1.0)
    return np.log(np.maximum(mel, LOG_FLOOR))


def log_spectral_distance_db(log_spec_a, log_spec_b, floor_db: float = -80.0) -> float:
    """Log-spectral distance in dB between two natural-log spectrograms [shape=(n_bins, T)].

    Both are converted to dB (``20 / ln 10`` per nat) and clamped at ``floor_db`` (so differences
    between inaudible bins do not count); then the RMS difference over the bins of each frame is
    averaged over the frames: ``mean_t sqrt(mean_f (A_ft - B_ft)^2)``. Shapes must match.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    a, b = _as_array(log_spec_a, "log_spec_a"), _as_array(log_spec_b, "log_spec_b")
    if a.shape != b.shape or a.ndim != 2:
        raise BadInputError(f"log_spectral_distance_db: expected two spectrograms of one (n_bins, T) shape, "
                            f"got {a.shape} and {b.shape}")
    to_db = 20 / math.log(10)
    a, b = np.maximum(a * to_db, floor_db), np.maximum(b * to_db, floor_db)
    return float(np.sqrt(((a - b) ** 2).mean(axis=0)).mean())


def griffin_lim(magnitude, n_iter: int = 32, hop_length: int = 256, n_fft: int | None = None,
                length: int | None = None, momentum: float = 0.99) -> np.ndarray:
    """Estimate audio from a linear STFT magnitude by Griffin-Lim, from a fixed random phase.

    ``momentum=0`` is the original algorithm (Griffin and Lim 1984); the default 0.99 is the "fast"
    variant (Perraudin et al. 2013), which converges in far fewer iterations.

    ``magnitude`` is ``|S|`` [shape=(..., 1 + n_fft // 2, T)] (``np.exp`` a log one); ``n_fft``
    defaults to ``2 * (F - 1)``, ``length`` to ``hop_length * (T - 1)``. Returns ``y``
    [shape=(..., length)], float32; the same input always gives the same output.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    magnitude = _as_array(magnitude, "magnitude")
    return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, n_fft=n_fft,
                              length=length, momentum=momentum, random_state=0)


def mel_to_audio(log_mel, sr: int, n_fft: int = 1024, hop_length: int = 256,
                 fmin: float = 0.0, fmax: float | None = None, n_iter: int = 32,
                 length: int | None = None, inverse: str = "nnls") -> np.ndarray:
    """Invert ``log_mel``: mel bands back to ``|S|``, then Griffin-Lim.

    ``inverse="nnls"`` solves a non-negative least-squares problem for ``|S|``; ``"pinv"`` applies
    the filterbank's pseudo-inverse and clips at 0, about ten times faster (for widgets) and a
    little blurrier in the highest bands. Returns ``y`` [shape=(..., length)], float32.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    mel = np.exp(_as_array(log_mel, "log_mel"))
    if inverse == "nnls":
        magnitude = librosa.feature.inverse.mel_to_stft(mel, sr=sr, n_fft=n_fft, power=1.0,
                                                        fmin=fmin, fmax=fmax)
    elif inverse == "pinv":
        pinv = _mel_pseudo_inverse(sr, n_fft, mel.shape[-2], fmin, fmax)
        magnitude = np.maximum(np.einsum("fm,...mt->...ft", pinv, mel), 0.0).astype(np.float32)
    else:
        raise BadInputError(f"inverse={inverse!r}: expected 'nnls' or 'pinv'")
    return griffin_lim(magnitude, n_iter=n_iter, hop_length=hop_length, n_fft=n_fft,
                       length=length)


@functools.lru_cache(maxsize=8)
def _mel_pseudo_inverse(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.linalg.pinv(basis).astype(np.float32)


# Pitch and loudness: the controls of a synthesiser -------------------------------------------

def a_weighted_loudness_db(y, sr: int, n_fft: int = 1024, hop_length: int = 128,
                           floor_db: float = -100.0) -> np.ndarray:
    """Loudness per frame: the A-weighted mean square of each Hann-windowed frame, in dB full scale.

    ``L_t = 10 log10(2 sum_f w_f |S_ft|^2 / (n_fft sum_n win_n^2))`` with ``w_f = 10^(A(f) / 10)``
    the A-weighting (IEC 61672) of bin ``f``: by Parseval, without the weighting this is the mean
    square of the frame, so a full-scale sine at 1 kHz (where A = 0 dB) reads -3 dB and a sine at
    100 Hz about 19 dB less, as the ear hears it. Clamped below at ``floor_db``.

    Returns ``loudness_db`` [shape=(..., 1 + n // hop_length)] (centred frames, as `stft`), float32.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    power = np.abs(stft(y, n_fft, hop_length)) ** 2
    frequencies = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    with np.errstate(divide="ignore"):  # the weighting is -inf dB at 0 Hz: weight 0
        weights = 10 ** (librosa.A_weighting(frequencies, min_db=None) / 10)
    window_energy = float((np.hanning(n_fft + 1)[:-1] ** 2).sum())  # the periodic Hann window of stft
    mean_square = 2 * np.einsum("f,...ft->...t", weights, power) / (n_fft * window_energy)
    return np.maximum(10 * np.log10(np.maximum(mean_square, 1e-30)), floor_db).astype(np.float32)


def _fill_unvoiced(midi: np.ndarray) -> np.ndarray:
    """Hold the last pitch through unvoiced frames (NaN), the first one before it: a release still
    rings at the pitch of its note, and an oscillator needs a frequency everywhere."""
    voiced = np.flatnonzero(~np.isnan(midi))
    if not len(voiced):
        raise BadInputError("no voiced frame: no pitch to follow")
    held = voiced[np.maximum(np.searchsorted(voiced, np.arange(len(midi)), side="right") - 1, 0)]
    return midi[held]


def notes_to_f0_hz(notes, n_frames: int, qpm: float = 120, sr: int = DEFAULT_SR,
                   hop_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The fundamental frequency of rendered notes, frame by frame, from the score.

    ``notes`` are ``(pitch, start, duration, velocity)`` in quarter notes, rendered as
    `render_notes` does (same ``qpm`` and ``sr``); frame ``t`` is centred on sample
    ``t * hop_length``. Where notes overlap the latest to start wins; between notes and in the
    release the last pitch is held (see ``voiced``).

    Returns ``(f0_hz [shape=(n_frames,)] float32, voiced [shape=(n_frames,)] bool)``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    events, _ = _note_events(notes, qpm, sr)
    centres = np.arange(_as_int(n_frames, "n_frames", 1, 10**8)) * hop_length
    midi, sounding = np.full(len(centres), np.nan), {}
    for sample, is_on, pitch, _ in events:
        if is_on:
            sounding[pitch] = sample
        elif pitch in sounding:
            on = sounding.pop(pitch)
            midi[(centres >= on) & (centres < sample)] = pitch
    voiced = ~np.isnan(midi)
    return librosa.midi_to_hz(_fill_unvoiced(midi)).astype(np.float32), voiced


def pyin_f0_hz(y, sr: int, hop_length: int = 128, frame_length: int = 1024, fmin_hz: float = 65.0,
               fmax_hz: float = 2100.0) -> tuple[np.ndarray, np.ndarray]:
    """The fundamental frequency of a recording by probabilistic YIN (``librosa.pyin``, Mauch and
    Dixon 2014), with unvoiced frames holding the last voiced pitch as in `notes_to_f0_hz`.

    Returns ``(f0_hz [shape=(1 + n // hop_length,)] float32, voiced [same shape] bool)``; a clip
    without a single voiced frame raises ``BadInputError``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0_hz, voiced, _ = librosa.pyin(_as_array(y, "y"), fmin=fmin_hz, fmax=fmax_hz, sr=sr,
                                    frame_length=frame_length, hop_length=hop_length)
    return librosa.midi_to_hz(_fill_unvoiced(librosa.hz_to_midi(f0_hz))).astype(np.float32), voiced


def detect_note_spans(f0_hz, loudness_db, hop_length: int = 128, sounding_range_db: float = 30.0,
                      min_frames: int = 3, restrike_db: float = 2.0) -> np.ndarray:
    """Notes found in a recording, for when there is no score: rows ``(on_sample, off_sample,
    pitch, 0)`` [shape=(n_notes, 4)] int64 (velocity unknown).

    A frame sounds when its loudness ``loudness_db`` [shape=(T,)] is within ``sounding_range_db``
    of the loudest. A note starts where sounding begins; where the rounded pitch of ``f0_hz``
    [shape=(T,)] changes and then holds ``min_frames`` frames; or, for a re-struck note, at a
    minimum of the (3-frame smoothed) loudness over 13 frames that rises by ``restrike_db`` within
    the next 8 (64 ms at 8-ms frames; a vibrato moves it more slowly). A start within
    ``2 min_frames`` of the previous one is the same attack. A note ends where the next starts or
    the sound stops.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0_hz, loudness_db = _as_array(f0_hz, "f0_hz"), _as_array(loudness_db, "loudness_db")
    n = min(len(f0_hz), len(loudness_db))
    midi = np.round(librosa.hz_to_midi(np.maximum(f0_hz[:n], 1.0))).astype(np.int64)
    sounding = loudness_db[:n] >= loudness_db[:n].max() - sounding_range_db
    smooth = np.convolve(np.pad(loudness_db[:n], 1, mode="edge"), np.ones(3) / 3, mode="valid")
    starts = set()
    for t in range(1, n - 1):
        if smooth[t] == smooth[max(0, t - 6):t + 7].min() and smooth[t + 1:t + 9].max() - smooth[t] >= restrike_db:
            starts.add(t)
        if t <= n - min_frames and midi[t] != midi[t - 1] and np.all(midi[t:t + min_frames] == midi[t]):
            starts.add(t)
    kept = []
    for t in sorted(starts):  # an attack's dip follows its pitch change: one note start
        if not kept or t - kept[-1] > 2 * min_frames:
            kept.append(t)
    rows, on = [], None
    for t in range(n + 1):
        is_sounding = t < n and sounding[t]
        if on is not None and (not is_sounding or t in kept):
            rows.append((on * hop_length, t * hop_length, int(np.bincount(midi[on:t]).argmax()), 0))
            on = None
        if on is None and is_sounding:
            on = t
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


# mu-law ---------------------------------------------------------------------------------------

def mu_law_encode(y, mu: int = 255):
    """Compand and quantise audio to ``mu + 1`` levels, as WaveNet does.

    ``F(y) = sign(y) ln(1 + mu |y|) / ln(1 + mu)``, then ``q = floor((F(y) + 1) / 2 * mu + 0.5)``.

    ``y`` is a NumPy array or a tensor [shape=(...)]; values outside [-1, 1] are clipped.
    Returns ``q`` of the same type and shape, int64 in [0, mu].

    Chapter: notebooks/01_music_as_data.ipynb
    """
    is_tensor = isinstance(y, torch.Tensor)
    xp = torch if is_tensor else np
    x = y if is_tensor else np.asarray(y, dtype=np.float64)
    if not bool(xp.isfinite(x).all()):
        raise BadInputError("mu_law_encode: y contains NaN or infinite samples")
    x = xp.clip(x, -1.0, 1.0)
    companded = xp.sign(x) * xp.log1p(mu * xp.abs(x)) / math.log1p(mu)
    q = xp.floor((companded + 1) / 2 * mu + 0.5)
    return q.long() if is_tensor else q.astype(np.int64)


def mu_law_decode(q, mu: int = 255):
    """Invert ``mu_law_encode``: ``y = sign(x) ((1 + mu)^|x| - 1) / mu`` with ``x = 2 q / mu - 1``.

    Returns ``y`` of the same type (array or tensor) and shape as ``q``, float32 in [-1, 1].

    Chapter: notebooks/01_music_as_data.ipynb
    """
    is_tensor = isinstance(q, torch.Tensor)
    xp = torch if is_tensor else np
    x = q.double() if is_tensor else np.asarray(q, dtype=np.float64)
    if bool(((x < 0) | (x > mu)).any()):
        raise BadInputError(f"mu_law_decode: q must lie in [0, {mu}]")
    x = 2 * x / mu - 1
    y = xp.sign(x) * ((1 + mu) ** xp.abs(x) - 1) / mu
    return y.float() if is_tensor else y.astype(np.float32)


# Files ----------------------------------------------------------------------------------------

def load_audio(path, sr: int | None = None, mono: bool = True,
               max_duration_s: float = 600.0) -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, OGG, MP3, ...) with soundfile.

    ``sr`` resamples (``librosa.resample``) when given and different; ``mono`` averages the
    channels, else a multichannel file gives [shape=(channels, n)]; files longer than
    ``max_duration_s`` are refused from their header, before reading. Returns ``(y, sr)``,
    ``y`` [shape=(n,)] float32. Missing, empty, unreadable, truncated, damaged (a header that does
    not match the contents) or too long files and NaN samples raise ``BadInputError``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError) as err:
        raise BadInputError(f"{path}: not a readable audio file ({err})") from err
    if info.frames <= 0:
        raise BadInputError(f"{path}: empty (no samples)")
    if info.duration > max_duration_s:
        raise BadInputError(f"{path}: too long ({info.duration:.1f} s > max_duration_s="
                            f"{max_duration_s} s); cut it or raise max_duration_s")
    # libsndfile reads a cut-off file without complaint but logs "data : 32000 (should be 956)"
    declared = re.search(r"data : (\d+) \(should be (\d+)\)", info.extra_info)
    if declared and 0 < int(declared[2]) < int(declared[1]) < 0x7FFFFFFF:
        raise BadInputError(f"{path}: truncated (header promises {declared[1]} bytes of audio, "
                            f"the file holds {declared[2]}); export it again")
    # a header that promises less audio than the file holds: libsndfile reads on into the samples as
    # if they were chunks and gives up ("Unknown chunk marker", "Chunk size ... > file length")
    damaged = re.search(r"Unknown chunk marker|Chunk size \d+ > file length", info.extra_info)
    if damaged:
        raise BadInputError(f"{path}: damaged (its header does not match its contents: {damaged[0]} after "
                            f"{info.frames} samples); export it again")
    try:
        y, file_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as err:
        raise BadInputError(f"{path}: not a readable audio file ({err})") from err
    if mono:
        y = y.mean(axis=1)
    else:  # librosa's convention: (n,) for a one-channel file, (channels, n) otherwise
        y = y[:, 0] if y.shape[1] == 1 else y.T
    if not np.all(np.isfinite(y)):
        raise BadInputError(f"{path}: contains NaN or infinite samples")
    if sr is not None and sr != file_sr:
        sr = _as_int(sr, "sr", 1000, 384000)
        y, file_sr = librosa.resample(y, orig_sr=file_sr, target_sr=sr), sr
    return np.ascontiguousarray(y, dtype=np.float32), int(file_sr)


def save_audio(path, y, sr: int, subtype: str | None = None) -> Path:
    """Write audio atomically: a temporary file in the same folder, then ``os.replace``.

    ``y`` [shape=(n,)] or [shape=(channels, n)]. The format comes from the extension (.wav,
    .flac, .ogg, .mp3); ``subtype`` defaults to soundfile's (``PCM_16`` for WAV and FLAC). A
    peak above 1.0 would clip in an integer subtype and raises ``BadInputError`` (normalise, or
    pass ``subtype="FLOAT"``). An interrupted write never leaves a half-written file.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    path = Path(path)
    fmt = _FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInputError(f"{path}: unknown audio extension; use one of {sorted(_FILE_FORMATS)}")
    subtype = subtype or soundfile.default_subtype(fmt)
    if not soundfile.check_format(fmt, subtype):
        raise BadInputError(f"{path}: subtype {subtype!r} does not exist for {fmt}")
    y = check_audio(y, sr, str(path), ndim=2 if np.ndim(y) == 2 else 1, allow_silence=True)
    peak = float(np.abs(y).max())
    if peak > 1.0 and subtype not in ("FLOAT", "DOUBLE"):
        raise BadInputError(f"{path}: peak {peak:.3f} > 1.0 would clip in {subtype}; "
                            "normalise y or pass subtype='FLOAT'")
    try:
        return fileio.write_atomic(path, lambda tmp: soundfile.write(tmp, y.T, sr, format=fmt, subtype=subtype))
    except soundfile.SoundFileError as err:
        raise BadInputError(f"{path}: cannot write {fmt} at {sr} Hz ({err})") from err


# Players for the book -------------------------------------------------------------------------

def encode_for_player(y, sr: int, name: str = "y") -> tuple[bytes, str]:
    """Compress a clip for a page's audio player: ``(file bytes, MIME type)``.

    The clip is normalised to a -1 dBFS peak and encoded as MP3 (LAME VBR at
    ``PLAYER_COMPRESSION``; every browser plays it), or OGG Vorbis at the rates MP3 lacks. Every
    player of the book goes through here, so one setting sizes all of them.

    ``y`` [shape=(n,)], array or tensor; ``name`` labels errors (empty, NaN, ...).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    y = check_audio(y, sr, name, allow_silence=True)
    peak = float(np.abs(y).max())
    if peak > 0:
        y = y * (_PLAYER_PEAK / peak)
    # libsndfile encodes MP3 only at the MPEG rates
    if sr in _MP3_RATES and "MP3" in soundfile.available_formats():
        fmt, subtype, mime = "MP3", "MPEG_LAYER_III", "audio/mpeg"
    else:
        fmt, subtype, mime = "OGG", "VORBIS", "audio/ogg"
    buffer = io.BytesIO()
    soundfile.write(buffer, y, sr, format=fmt, subtype=subtype, compression_level=PLAYER_COMPRESSION)
    return buffer.getvalue(), mime


def _audio_tag(y, sr, name: str) -> str:
    data, mime = encode_for_player(y, sr, name)
    encoded = base64.b64encode(data).decode("ascii")
    return f'<audio controls preload="metadata" src="data:{mime};base64,{encoded}"></audio>'


def player(y, sr: int, title: str | None = None):
    """An audio player whose sound is embedded in the page, so the HTML book plays offline.

    The clip is compressed by `encode_for_player` and embedded in a base64 data URI: about
    4.5 kB per second at 16 kHz.

    ``y`` [shape=(n,)], array or tensor; ``title`` is shown above. Returns ``IPython.display.HTML``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from IPython.display import HTML

    caption = f"<figcaption>{html.escape(title)}</figcaption>" if title else ""
    return HTML(f'<figure class="musiclab-player">{caption}{_audio_tag(y, sr, title or "y")}'
                "</figure>")


def player_grid(rows, sr: int, col_labels=None, row_labels=None):
    """A table of players (a static gallery): ``rows[i][j]`` is ``(label, y)`` or None.

    Returns ``IPython.display.HTML``: one ``<table>``, ``col_labels`` heading the columns and
    ``row_labels`` the rows.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from IPython.display import HTML

    n_cols = max((len(row) for row in rows), default=0)
    if n_cols == 0 or (row_labels is not None and len(row_labels) != len(rows)) or (
            col_labels is not None and len(col_labels) != n_cols):
        raise BadInputError(f"player_grid: {len(rows)} rows of up to {n_cols} cells do not match "
                            "row_labels/col_labels (or the grid is empty)")
    head = [""] if row_labels is not None else []
    table = [[f"<th>{html.escape(str(text))}</th>" for text in head + list(col_labels)]
             ] if col_labels is not None else []
    for i, row in enumerate(rows):
        cells = [f"<th>{html.escape(str(row_labels[i]))}</th>"] if row_labels is not None else []
        for j, cell in enumerate(list(row) + [None] * (n_cols - len(row))):
            cells.append("<td></td>" if cell is None else
                         f"<td><div>{html.escape(str(cell[0]))}</div>"
                         f"{_audio_tag(cell[1], sr, f'player_grid[{i}][{j}] {cell[0]}')}</td>")
        table.append(cells)
    rows_html = "".join("<tr>" + "".join(cells) + "</tr>" for cells in table)
    return HTML(f'<table class="musiclab-player-grid">{rows_html}</table>')
