"""Neural audio synthesis: ``python -m musiclab train ddsp | vocoder``, timbre transfer, vocoding.

- ``ddsp``: one DDSP decoder per instrument (`models.ddsp`), trained on folk melodies rendered on
  that instrument, with f0 from the score and A-weighted loudness from the audio; with ``--data``,
  on your recordings of one instrument, with f0 from pYIN.
- ``vocoder``: the mel vocoder (`models.vocoder`) on the book's log-mel settings, trained on folk
  melodies and one-shot notes rendered on the GAN's six instruments; with ``--data``, on your
  recordings.
- `transfer_timbre` plays a recording's pitch and loudness through a decoder; `vocode` turns a
  recording into its log-mel and back. Both refuse audio they cannot use (`check_synthesis_input`).

Chapter: notebooks/10_neural_synthesis.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from .. import audio, datasets, losses, recording, train
from ..errors import BadInputError
from .common import TrainingSettings, _finish, pick_settings, run_identity
from .cyclegan import _spread  # the CycleGAN's pick of test tunes: the same tunes in both chapters

QPM = 120  # the tempo of the CycleGAN's renderings: the same tunes sound the same in both chapters
TRANSFER_SOURCE = 73  # flute: its pitch and loudness drive the other instruments' decoders
MIN_DURATION_S = 0.25
MAX_FLATNESS = 0.3  # mean spectral flatness of the loud frames above this: noise, no pitch
SOUNDING_RANGE_DB = 30.0  # frames within this of the loudest count as sounding


# Input checks and the two entry points ------------------------------------------------------------------


def check_synthesis_input(y, sr: int, expected_sr: int, name: str = "audio", what: str = "the synthesiser"
                          ) -> np.ndarray:
    """Return ``y`` [shape=(n,)] as float32, or raise ``BadInputError`` naming ``name`` and the problem:
    empty, NaN or infinite samples, silent, another rate than ``expected_sr``, shorter than
    ``MIN_DURATION_S``, clipped (`recording.clipped_fraction`), or noise only (the loud frames' mean
    spectral flatness above ``MAX_FLATNESS``: white noise has about 0.5, a played note below 0.05).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    y = audio.check_audio(y, sr, name)
    audio.require_sr(sr, expected_sr, name)
    if len(y) < MIN_DURATION_S * sr:
        raise BadInputError(f"{name}: too short ({len(y) / sr:.3f} s < {MIN_DURATION_S} s) for {what}")
    clipped = recording.clipped_fraction(y)
    if clipped > recording.MAX_CLIPPED_FRACTION:
        raise BadInputError(f"{name}: clipped ({100 * clipped:.2f} % of samples stuck at the peak "
                            f"{np.abs(y).max():.3f}); record again at a lower input gain")
    flatness = librosa.feature.spectral_flatness(y=y, n_fft=1024, hop_length=256)[0]
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    loud = rms >= rms.max() * 10 ** (-SOUNDING_RANGE_DB / 20)
    if flatness[loud].mean() > MAX_FLATNESS:
        raise BadInputError(f"{name}: noise only (spectral flatness {flatness[loud].mean():.2f} > {MAX_FLATNESS}); "
                            f"{what} needs a pitched instrument")
    return y


def sounding_mean_db(loudness_db: np.ndarray) -> float:
    """Mean loudness of the sounding frames (within ``SOUNDING_RANGE_DB`` of the loudest).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    loudness_db = np.asarray(loudness_db)
    return float(loudness_db[loudness_db >= loudness_db.max() - SOUNDING_RANGE_DB].mean())


DYNAMICS = ("instrument", "source")


def at_decoder_level(model, loudness_db) -> np.ndarray:
    """``loudness_db`` [shape=(T,)] shifted so that its sounding frames have the mean loudness of the
    decoder ``model``'s training audio (a flute's level is not a clarinet's); its shape kept.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    loudness_db = np.asarray(loudness_db)
    return loudness_db + (model.config.mean_loudness_db - sounding_mean_db(loudness_db))


def transfer_loudness_db(model, y, f0_hz, spans=None, dynamics: str = "instrument") -> np.ndarray:
    """The loudness curve [shape=(1 + n // hop_length,)] that drives ``model`` when it plays the
    melody of ``y`` [shape=(n,)] with pitch ``f0_hz``: with ``dynamics="instrument"`` the decoder's
    own articulation of the melody's notes (``spans`` from the score, `audio.note_spans`, else found
    in ``y`` by `audio.detect_note_spans`); with ``"source"`` the A-weighted loudness of ``y``,
    shifted so that its sounding frames have the mean loudness of the decoder's training audio (a
    flute's level is not a clarinet's, but its swells and attacks stay the flute's).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import ddsp

    if dynamics not in DYNAMICS:
        raise BadInputError(f"dynamics={dynamics!r}: expected one of {DYNAMICS}")
    c = model.config
    loudness_db = audio.a_weighted_loudness_db(y, c.sr, c.loudness_n_fft, c.hop_length)
    if dynamics == "source":
        return at_decoder_level(model, loudness_db)
    if spans is None:
        spans = audio.detect_note_spans(f0_hz, loudness_db, c.hop_length, SOUNDING_RANGE_DB)
    features = torch.from_numpy(ddsp.note_features(spans, len(loudness_db), c.hop_length))[None]
    with torch.no_grad():
        return model.articulation(features.to(next(model.parameters()).device))[0].cpu().numpy()


def transfer_timbre(model, y, sr: int, f0_hz=None, name: str = "audio", seed: int = 0, spans=None,
                    dynamics: str = "instrument") -> np.ndarray:
    """Play the melody of ``y`` [shape=(n,)] through the DDSP decoder ``model``.

    ``y`` is checked (`check_synthesis_input`); ``f0_hz`` [shape=(1 + n // hop_length,)] is taken
    from pYIN (`audio.pyin_f0_hz`) unless given (e.g. from the score, `audio.notes_to_f0_hz`, with
    the score's note ``spans``); the loudness is `transfer_loudness_db` (``dynamics``).
    Returns ``y`` [shape=(n,)].

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import ddsp

    c = model.config
    y = check_synthesis_input(y, sr, c.sr, name, "timbre transfer")
    if f0_hz is None:
        try:
            f0_hz, _ = audio.pyin_f0_hz(y, sr, c.hop_length)
        except BadInputError as error:
            raise BadInputError(f"{name}: no pitch found ({error}); timbre transfer needs a pitched melody") from error
    loudness_db = transfer_loudness_db(model, y, f0_hz, spans, dynamics)
    return ddsp.synthesise(model, f0_hz, loudness_db, seed)[:len(y)]


def vocode(model, y, sr: int, name: str = "audio") -> np.ndarray:
    """``y`` [shape=(n,)], checked by `check_synthesis_input`, to its log-mel and back through the
    vocoder ``model``: ``y`` [shape=(n,)] (the last ``n % hop_length`` samples are silent).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import vocoder

    y = check_synthesis_input(y, sr, model.config.sr, name, "the vocoder")
    out = vocoder.log_mel_to_audio(model, vocoder.log_mel(y, model.config))
    return np.pad(out, (0, len(y) - len(out)))


# Data ---------------------------------------------------------------------------------------------------


def render_melodies(tunes, program: int, max_quarters: float, sr: int = audio.DEFAULT_SR) -> list[tuple]:
    """The opening ``max_quarters`` quarter notes of each tune on ``program`` at ``QPM``:
    ``(y [shape=(n,)], notes)`` per tune, as the CycleGAN renders them (`models.cyclegan.melody_log_mel`).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    rendered = []
    for tune in tunes:
        notes = [n for n in tune.notes if n.start < max_quarters]
        rendered.append((audio.render_notes(notes, program=program, qpm=QPM, sr=sr), notes))
    return rendered


def ddsp_features(y, config, notes=None) -> dict:
    """A clip's training example: ``y`` cut to whole frames [shape=(T * hop_length,)], ``f0_hz`` and
    note spans from the score when ``notes`` are given (else pYIN and `audio.detect_note_spans`),
    ``loudness_db`` [shape=(T,)] and ``note_features`` [shape=(T, ddsp.N_NOTE_FEATURES)].

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import ddsp

    hop = config.hop_length
    loudness_db = audio.a_weighted_loudness_db(y, config.sr, config.loudness_n_fft, hop)
    if notes is not None:
        f0_hz, _ = audio.notes_to_f0_hz(notes, len(loudness_db), QPM, config.sr, hop)
        spans = audio.note_spans(notes, QPM, config.sr)
    else:
        f0_hz, _ = audio.pyin_f0_hz(y, config.sr, hop)
        spans = audio.detect_note_spans(f0_hz, loudness_db, hop, SOUNDING_RANGE_DB)
    n_frames = len(y) // hop  # the centred STFT has one more frame, centred on the last sample
    return {"y": np.asarray(y[:n_frames * hop], np.float32), "f0_hz": f0_hz[:n_frames],
            "loudness_db": loudness_db[:n_frames],
            "note_features": ddsp.note_features(spans, len(loudness_db), hop)[:n_frames]}


class SegmentBatches:
    """An iterable of training batches: random windows of ``n_frames`` frames cut from clips.

    ``clips`` are dicts of arrays: frame-wise ``f0_hz``, ``loudness_db`` (and any other frame-wise
    key, e.g. ``note_features``) of T frames with ``y`` of ``T * hop_length`` samples (DDSP,
    `ddsp_features`), or, with ``vocoder=True``, ``log_mel``
    [shape=(n_mels, T)] with ``y`` of ``(T - 1) * hop_length`` samples (`vocoder_clips`). A batch
    holds, per key, the window of every drawn clip. Each pass of ``batches_per_pass`` batches draws
    from a generator seeded by ``seed`` and torch's random state when the pass starts (which
    `train.fit` seeds per step), so a resumed run sees the batches of an uninterrupted one.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def __init__(self, clips: list[dict], n_frames: int, hop_length: int, batch_size: int, vocoder: bool = False,
                 batches_per_pass: int = 100, seed: int = 0):
        key = "log_mel" if vocoder else "f0_hz"
        self.clips = [c for c in clips if c[key].shape[-1] >= n_frames + 1]
        if not self.clips:
            raise BadInputError(f"no clip lasts {n_frames + 1} frames ({(n_frames + 1) * hop_length} samples)")
        self.n_frames, self.hop_length, self.batch_size = n_frames, hop_length, batch_size
        self.vocoder, self.batches_per_pass, self.seed = vocoder, batches_per_pass, seed

    def _window(self, clip: dict, rng) -> dict:
        hop, n = self.hop_length, self.n_frames
        if self.vocoder:
            s = int(rng.integers(clip["log_mel"].shape[-1] - n + 1))
            return {"log_mel": clip["log_mel"][:, s:s + n], "y": clip["y"][s * hop:(s + n - 1) * hop]}
        s = int(rng.integers(len(clip["f0_hz"]) - n + 1))
        return {**{k: clip[k][s:s + n] for k in clip if k != "y"}, "y": clip["y"][s * hop:(s + n) * hop]}

    def __iter__(self):
        rng = np.random.default_rng([self.seed, int(torch.randint(2**62, ()))])
        for _ in range(self.batches_per_pass):
            windows = [self._window(self.clips[i], rng) for i in rng.integers(len(self.clips), size=self.batch_size)]
            yield {k: torch.from_numpy(np.stack([w[k] for w in windows])) for k in windows[0]}


def _user_clips(data, sr: int, model: str) -> tuple[list[np.ndarray], str, list]:
    recordings, skipped = datasets.user.read_recordings(
        data, sr, min_duration_s=2.0, needed_for=f"the {model} learns from windows of a second or more")
    return recordings, f"your recordings in {data}: {len(recordings)} files at {sr} Hz, {len(skipped)} skipped", skipped


def _split_recordings(recordings: list[np.ndarray], segment_s: float, sr: int) -> dict[str, list[np.ndarray]]:
    """Your recordings cut into ``segment_s`` pieces, every tenth held out for validation."""
    n = round(segment_s * sr)
    pieces = [y[s:s + n] for y in recordings for s in range(0, max(1, len(y) - n // 2), n)]
    valid = pieces[9::10] or pieces[-1:]
    train_pieces = [p for i, p in enumerate(pieces) if i % 10 != 9] if len(pieces) > 1 else pieces
    return {"train": train_pieces, "valid": valid}


def log_mel_lsd_db(y_pred, y_true, sr: int) -> float:
    """Log-spectral distance (dB, `audio.log_spectral_distance_db`, floor -80 dB) of two clips' log-mels at
    the CycleGAN's settings, so that the figures compare with its.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import cyclegan

    def spec(y):
        return audio.log_mel(y, sr, n_fft=cyclegan.N_FFT, hop_length=cyclegan.HOP_LENGTH, n_mels=cyclegan.N_MELS)

    n = min(len(y_pred), len(y_true))
    return audio.log_spectral_distance_db(spec(y_pred[:n]), spec(y_true[:n]), cyclegan.FLOOR_DB)


# DDSP ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DdspSettings(TrainingSettings):
    """Training settings of ``ddsp`` (defaults: full mode; `DDSP_SETTINGS` holds both presets).
    ``program``: the instrument (General MIDI); ``segment_frames``: the window of one example
    (125 frames of 8 ms = 1 s); ``train_tunes``, ``valid_tunes``, ``test_tunes``: tunes spread over
    each split, their opening ``max_quarters`` rendered (the test uses 16, as the CycleGAN does).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    steps: int = 6000
    batch_size: int = 8
    lr: float = 2e-3
    log_every: int = 25
    eval_every: int = 200
    checkpoint_every: int = 200
    program: int = 71
    hidden: int = 128
    n_harmonics: int = 40
    segment_frames: int = 125
    train_tunes: int = 200
    valid_tunes: int = 8
    test_tunes: int = 40
    max_quarters: float = 32


DDSP_SETTINGS = {"full": DdspSettings(),
                 "quick": DdspSettings(steps=60, batch_size=4, log_every=10, eval_every=30, hidden=64,
                                       train_tunes=16, valid_tunes=2, test_tunes=4, max_quarters=16)}


ARTICULATION_WEIGHT = 0.1  # per dB of mean absolute loudness error; its parameters are the articulation's own


def ddsp_step(model):
    """One DDSP update: synthesise from the batch's controls, `losses.multiscale_spectral_loss` to its
    audio; plus ``ARTICULATION_WEIGHT`` times the articulation's mean absolute error (dB) on the
    batch's loudness from its note features.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def step(batch, update):
        spectral = losses.multiscale_spectral_loss(model(batch["f0_hz"], batch["loudness_db"]), batch["y"])
        articulation = (model.articulation(batch["note_features"]) - batch["loudness_db"]).abs().mean()
        update(spectral + ARTICULATION_WEIGHT * articulation)
        return {"loss": spectral, "articulation_db": articulation}

    return step


def articulation_step(model):
    """One update of the articulation alone (the decoder is frozen), through the decoder: the
    `losses.multiscale_spectral_loss` of the audio the decoder plays from the articulated loudness,
    plus ``ARTICULATION_WEIGHT`` times its mean absolute error (dB). A loudness curve a few dB off
    where the ear does not mind is better than one that is close on average but wrong at the attacks.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def step(batch, update):
        loudness_db = model.articulation(batch["note_features"])
        spectral = losses.multiscale_spectral_loss(model(batch["f0_hz"], loudness_db), batch["y"])
        articulation = (loudness_db - batch["loudness_db"]).abs().mean()
        update(spectral + ARTICULATION_WEIGHT * articulation)
        return {"loss": spectral, "articulation_db": articulation}

    return step


def score_ddsp(model, examples: list[dict]) -> dict:
    """How well the decoder plays the instrument it learned, on ``examples`` (`ddsp_features`): the
    mean log-spectral distance (dB) of its resynthesis from their own loudness (``lsd_resynthesis``)
    and from its articulation of their notes (``lsd_articulated``) to their audio, and the
    articulation's mean absolute loudness error (dB).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import ddsp

    sr, rows = model.config.sr, []
    for e in examples:
        with torch.no_grad():
            articulated = model.articulation(torch.from_numpy(e["note_features"])[None])[0].numpy()
        rows.append((log_mel_lsd_db(ddsp.synthesise(model, e["f0_hz"], e["loudness_db"]), e["y"], sr),
                     log_mel_lsd_db(ddsp.synthesise(model, e["f0_hz"], articulated), e["y"], sr),
                     float(np.abs(articulated - e["loudness_db"]).mean())))
    resynthesis, articulated, error = np.mean(rows, axis=0)
    return {"lsd_resynthesis": float(resynthesis), "lsd_articulated": float(articulated),
            "articulation_error_db": float(error)}


def score_timbre_transfer(model, tunes, program: int, source_program: int = TRANSFER_SOURCE,
                          max_quarters: float = 16, f0: str = "score") -> dict:
    """DDSP timbre transfer on ``tunes``: each tune rendered on ``source_program``, its f0 and note
    spans (from the score, or ``f0="pyin"``: found in the audio) played through ``model``
    (`transfer_timbre`), scored by the log-spectral distance (dB) to the same tune rendered on
    ``program``, the decoder's instrument: ``lsd_transfer`` with the decoder's articulation,
    ``lsd_transfer_source_dynamics`` with the source's loudness. ``lsd_input`` is the
    untransformed source against the target (the identity baseline).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    c = model.config
    rows = []
    for (source, notes), (target, _) in zip(render_melodies(tunes, source_program, max_quarters, c.sr),
                                            render_melodies(tunes, program, max_quarters, c.sr)):
        if f0 == "score":
            f0_hz = audio.notes_to_f0_hz(notes, 1 + len(source) // c.hop_length, QPM, c.sr, c.hop_length)[0]
            spans = audio.note_spans(notes, QPM, c.sr)
        else:
            f0_hz, spans = audio.pyin_f0_hz(source, c.sr, c.hop_length)[0], None
        rows.append([log_mel_lsd_db(transfer_timbre(model, source, c.sr, f0_hz, spans=spans, dynamics=dynamics),
                                    target, c.sr) for dynamics in DYNAMICS] + [log_mel_lsd_db(source, target, c.sr)])
    instrument, source_dynamics, identity = np.mean(rows, axis=0)
    return {"lsd_transfer": float(instrument), "lsd_transfer_source_dynamics": float(source_dynamics),
            "lsd_input": float(identity)}


def train_ddsp(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True, data=None,
               restart: bool = False, **settings) -> dict:
    """Train the DDSP decoder of one instrument; write ``out_dir/ddsp-NAME.safetensors`` (`models.ddsp.instrument_name`).

    Two phases: ``steps`` of the decoder (`ddsp_step`; its articulation learns the loudness of the
    notes alongside), then ``steps // 4`` of the articulation alone through the frozen decoder
    (`articulation_step`), each resumable from its own checkpoint.

    Without ``data``: the train split's tunes rendered on ``program`` (f0 from the score), early
    stopping on the valid split's resynthesis; reported on the test split: resynthesis and, for an
    instrument other than the flute, timbre transfer from the flute on the CycleGAN's 40 test tunes
    (opening 16 quarters). With ``data`` (a recording or a folder of recordings of ONE instrument,
    at least 2 s each): f0 from pYIN, 2-s pieces, every tenth held out; written as ``ddsp-recording``.
    ``settings``: fields of `DdspSettings` to change (e.g. ``program=40``).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import ddsp

    start = time.perf_counter()
    program = settings.get("program", DdspSettings.program) if data is None else None
    instrument = ddsp.instrument_name(program)
    name = f"ddsp-{instrument}"
    settings = pick_settings(name, DDSP_SETTINGS, steps, **settings)
    model_config = ddsp.DdspConfig(hidden=settings.hidden, n_harmonics=settings.n_harmonics, instrument=instrument)
    skipped = []
    if data is None:
        split_tunes = {split: _spread(datasets.load_folk(split), n) for split, n in
                       (("train", settings.train_tunes), ("valid", settings.valid_tunes))}
        examples = {split: [ddsp_features(y, model_config, notes) for y, notes in
                            render_melodies(tunes, program, settings.max_quarters, model_config.sr)]
                    for split, tunes in split_tunes.items()}
        source = (f"{len(split_tunes['train'])} train tunes rendered with TimGM6mb on program {program} "
                  f"({audio.program_name(program)}) at {QPM} qpm, opening {settings.max_quarters:g} quarters; "
                  "f0 from the score")
    else:
        recordings, source, skipped = _user_clips(data, model_config.sr, "DDSP decoder")
        examples = {split: [ddsp_features(y, model_config) for y in pieces]
                    for split, pieces in _split_recordings(recordings, 2.0, model_config.sr).items()}
        source += "; f0 from pYIN, 2-s pieces, every tenth held out"
    loudness = np.concatenate([e["loudness_db"] for e in examples["train"]])
    model_config.mean_loudness_db = round(sounding_mean_db(loudness), 2)
    model = ddsp.DDSP(model_config)
    out_dir = Path(out_dir)
    batches = SegmentBatches(examples["train"], settings.segment_frames, model_config.hop_length,
                             settings.batch_size, seed=settings.seed)
    history = train.fit(model, torch.optim.Adam(model.parameters(), lr=settings.lr), ddsp_step(model), batches,
                        settings.steps, evaluate=lambda: score_ddsp(model, examples["valid"]),
                        eval_every=settings.eval_every, keep_best="lsd_resynthesis", log_every=settings.log_every,
                        grad_clip=1.0, lr_schedule=lambda step: train.constant_then_linear_decay(step, settings.steps),
                        seed=settings.seed, checkpoint_path=out_dir / f"{name}.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, source), config=model_config,
                        started=start, progress=progress, desc=f"DDSP {name}")
    metrics = {"steps": settings.steps, "best_valid_lsd": round(history.best_score, 4), "best_step": history.best_step}
    decoder = [p for n, p in model.named_parameters() if not n.startswith("articulation.")]
    for p in decoder:
        p.requires_grad_(False)
    articulation_steps = max(1, settings.steps // 4)
    phase_two = train.fit(model, torch.optim.Adam(model.articulation.parameters(), lr=settings.lr / 2),
                          articulation_step(model), batches, articulation_steps,
                          evaluate=lambda: score_ddsp(model, examples["valid"]), eval_every=settings.eval_every,
                          keep_best="lsd_articulated", log_every=settings.log_every, grad_clip=1.0,
                          lr_schedule=lambda step: train.constant_then_linear_decay(step, articulation_steps),
                          seed=settings.seed + 1, checkpoint_path=out_dir / f"{name}-articulation.pt",
                          checkpoint_every=settings.checkpoint_every, restart=restart,
                          identity=run_identity(settings, model_config, data, source + "; articulation phase"),
                          config=model_config, started=start, progress=progress, desc=f"DDSP {name} articulation")
    for p in decoder:
        p.requires_grad_(True)
    metrics.update({"articulation_steps": articulation_steps, "best_valid_lsd_articulated": round(phase_two.best_score, 4),
                    "best_articulation_step": phase_two.best_step})
    if data is None:
        test_tunes = _spread(datasets.load_folk("test"), settings.test_tunes)
        test = score_ddsp(model, [ddsp_features(y, model_config, notes) for y, notes in
                                  render_melodies(test_tunes, program, 16, model_config.sr)])
        if program != TRANSFER_SOURCE:
            test.update(score_timbre_transfer(model, test_tunes, program))
        metrics.update({f"test_{k}": round(v, 4) for k, v in test.items()})
        source += (f"; early stopping on {len(examples['valid'])} valid tunes; test: {len(test_tunes)} test tunes "
                   f"spread over the split, opening 16 quarters (transfer: from program {TRANSFER_SOURCE}, "
                   f"{audio.program_name(TRANSFER_SOURCE)})")
    return _finish(name, out_dir, model, model_config, settings, metrics, history, command, source,
                   skipped_files=skipped, history=[r for r in history if "lsd_resynthesis" in r]
                   + [{**r, "step": settings.steps + r["step"]} for r in phase_two if "lsd_articulated" in r])


# Vocoder ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VocoderSettings(TrainingSettings):
    """Training settings of ``vocoder`` (defaults: full mode; `VOCODER_SETTINGS` holds both presets).
    ``segment_frames``: log-mel frames per example (32 = 0.5 s); ``programs``: the instruments
    rendered (the GAN's six); ``train_tunes`` tunes per instrument (their opening ``max_quarters``)
    plus ``notes_per_condition`` GAN-style one-shot notes per (instrument, pitch).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    steps: int = 14000
    batch_size: int = 8
    lr: float = 1e-3
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    n_mels: int = 80
    dim: int = 128
    n_blocks: int = 6
    segment_frames: int = 32
    programs: tuple = (0, 19, 24, 40, 71, 73)
    train_tunes: int = 40
    notes_per_condition: int = 2
    valid_clips: int = 12
    max_quarters: float = 16


VOCODER_SETTINGS = {"full": VocoderSettings(),
                    "quick": VocoderSettings(steps=60, batch_size=4, log_every=10, eval_every=30, dim=64, n_blocks=3,
                                             train_tunes=3, notes_per_condition=0, valid_clips=4, max_quarters=8)}


def vocoder_step(model):
    """One vocoder update: audio from the batch's log-mels, `losses.multiscale_spectral_loss` to its audio.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def step(batch, update):
        loss = losses.multiscale_spectral_loss(model(batch["log_mel"]), batch["y"])
        update(loss)
        return {"loss": loss}

    return step


def spectral_lsd_db(y_pred, y_true, n_fft: int = 1024, hop_length: int = 256) -> float:
    """Log-spectral distance (dB, floor -80 dB) of two clips' linear STFT magnitudes: what an inverter
    got right, bin by bin, at the resolution of the mel's own STFT.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    n = min(len(y_pred), len(y_true))
    return audio.log_spectral_distance_db(audio.log_magnitude(y_pred[:n], n_fft, hop_length),
                                          audio.log_magnitude(y_true[:n], n_fft, hop_length), -80.0)


def score_vocoder(model, clips: list[dict], griffin_lim: bool = False) -> dict:
    """Mean `spectral_lsd_db` of the vocoder's audio from each clip's log-mel to the clip (and of
    Griffin-Lim's from the mel's pseudo-inverse, `audio.mel_to_audio`, with ``griffin_lim``).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import vocoder

    c = model.config
    scores = {"lsd_vocoder": float(np.mean([spectral_lsd_db(vocoder.log_mel_to_audio(model, x["log_mel"]), x["y"])
                                            for x in clips]))}
    if griffin_lim:
        scores["lsd_griffin_lim"] = float(np.mean([spectral_lsd_db(
            audio.mel_to_audio(x["log_mel"], c.sr, c.n_fft, c.hop_length, c.fmin, c.fmax, inverse="pinv"), x["y"])
            for x in clips]))
    return scores


def vocoder_clips(clips, config) -> list[dict]:
    """Clips [shape=(n,)] as vocoder examples: ``log_mel`` [shape=(n_mels, T)] and ``y`` cut to the
    ``(T - 1) * hop_length`` samples between the first and last frame centres.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import vocoder

    examples = []
    for y in clips:
        x = vocoder.log_mel(y, config)
        examples.append({"log_mel": x, "y": np.asarray(y[:(x.shape[-1] - 1) * config.hop_length], np.float32)})
    return examples


def vocoder_note_clips(programs, n_per_condition: int, seed: int) -> list[np.ndarray]:
    """GAN-style one-shot notes (`models.gan.render_note_variations`: varied velocity, hold and onset)
    of ``programs`` over the GAN's two octaves, 0.75 s each.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import gan

    if n_per_condition == 0:
        return []
    config = gan.GanConfig()
    return list(gan.render_note_variations(config, n_per_condition, seed, programs=programs)["y"])


def train_vocoder(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True, data=None,
                  restart: bool = False, **settings) -> dict:
    """Train the mel vocoder; write ``out_dir/vocoder.safetensors``.

    Without ``data``: the train split's tunes rendered on each of ``programs`` (a different slice
    of tunes per instrument) and one-shot notes; early stopping on valid tunes; reported on test
    tunes and freshly drawn notes against Griffin-Lim on the same mels. With ``data`` (recordings,
    at least 2 s each): 2-s pieces, every tenth held out. ``settings``: fields of `VocoderSettings`.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    from ..models import vocoder

    start = time.perf_counter()
    settings = pick_settings("vocoder", VOCODER_SETTINGS, steps, **settings)
    model_config = vocoder.VocoderConfig(n_mels=settings.n_mels, dim=settings.dim, n_blocks=settings.n_blocks)
    sr, skipped = model_config.sr, []
    n_programs = len(settings.programs)
    if data is None:
        def tune_clips(split: str, n_per_program: int) -> list[np.ndarray]:
            tunes = _spread(datasets.load_folk(split), n_per_program * n_programs)
            return [y for i, program in enumerate(settings.programs)
                    for y, _ in render_melodies(tunes[i::n_programs], program, settings.max_quarters, sr)]

        clips = {"train": tune_clips("train", settings.train_tunes)
                 + vocoder_note_clips(settings.programs, settings.notes_per_condition, seed=0),
                 "valid": tune_clips("valid", max(1, settings.valid_clips // n_programs))}
        source = (f"{settings.train_tunes} train tunes per instrument on programs {list(settings.programs)}, opening "
                  f"{settings.max_quarters:g} quarters at {QPM} qpm, and {settings.notes_per_condition} one-shot "
                  "note(s) per (program, pitch 55-79)")
    else:
        recordings, source, skipped = _user_clips(data, sr, "vocoder")
        clips = _split_recordings(recordings, 2.0, sr)
        source += "; 2-s pieces, every tenth held out"
    examples = {split: vocoder_clips(c, model_config) for split, c in clips.items()}
    model = vocoder.Vocoder(model_config)
    out_dir = Path(out_dir)
    batches = SegmentBatches(examples["train"], settings.segment_frames, model_config.hop_length,
                             settings.batch_size, vocoder=True, seed=settings.seed)
    history = train.fit(model, torch.optim.AdamW(model.parameters(), lr=settings.lr), vocoder_step(model), batches,
                        settings.steps, evaluate=lambda: score_vocoder(model, examples["valid"]),
                        eval_every=settings.eval_every, keep_best="lsd_vocoder", log_every=settings.log_every,
                        grad_clip=1.0, lr_schedule=lambda step: train.constant_then_linear_decay(step, settings.steps),
                        seed=settings.seed, checkpoint_path=out_dir / "vocoder.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, source), config=model_config,
                        started=start, progress=progress, desc="vocoder")
    metrics = {"steps": settings.steps, "best_valid_lsd": round(history.best_score, 4), "best_step": history.best_step}
    if data is None:
        test_tunes = _spread(datasets.load_folk("test"), n_programs * 2)
        test_clips = [y for i, program in enumerate(settings.programs)
                      for y, _ in render_melodies(test_tunes[i::n_programs], program, 16, sr)]
        test = score_vocoder(model, vocoder_clips(test_clips + vocoder_note_clips(settings.programs, 1, seed=1),
                                                  model_config), griffin_lim=True)
        metrics.update({f"test_{k}": round(v, 4) for k, v in test.items()})
        source += (f"; early stopping on {len(examples['valid'])} valid tunes; test: {len(test_tunes)} test tunes "
                   "(two per instrument, opening 16 quarters) and one fresh note per (program, pitch), against "
                   "Griffin-Lim (mel pseudo-inverse, 32 iterations) on the same mels")
    return _finish("vocoder", out_dir, model, model_config, settings, metrics, history, command, source,
                   skipped_files=skipped, history=[r for r in history if "lsd_vocoder" in r])
