"""Chapter 10's synthesis explorer: play a melody's pitch and loudness curves through a DDSP decoder.

Pick a decoder (the shipped instruments), a held-out tune and how to bend its curves (transpose,
vibrato depth and rate, a crescendo), or upload a recording of your own. A tune's controls come from
its score (f0) and its flute rendering (A-weighted loudness), computed once per tune; an uploaded
recording's f0 comes from YIN (`fast_f0_hz`), tens of times faster than pYIN, so that an
interaction stays well under a third of a second.

Chapter: notebooks/10_neural_synthesis.ipynb
"""
from __future__ import annotations

import math

import librosa
import matplotlib.pyplot as plt
import numpy as np
import scipy.ndimage
from IPython.display import display

from .. import audio, datasets, plot, weights
from ..errors import BadInputError
from ..models import ddsp
from ..recipes import synthesis
from . import uploads

PREVIEW_QUARTERS = 8  # 4 s at the chapter's 120 quarter notes per minute
SOURCE_PROGRAM = synthesis.TRANSFER_SOURCE  # the flute: its performance drives every decoder


def shipped_decoders() -> dict:
    """``{instrument: DDSP decoder}`` for every decoder shipped in ``musiclab/checkpoints``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    names = [name for name in ddsp.CLASSES if (weights.CHECKPOINTS / f"{name}.safetensors").exists()]
    return {name.removeprefix("ddsp-"): ddsp.load_pretrained(name)[0] for name in names}


def fast_f0_hz(y, sr: int, hop_length: int, fmin_hz: float = 65.0, fmax_hz: float = 2100.0,
               quiet_db: float = 40.0, median_frames: int = 7) -> np.ndarray:
    """The fundamental frequency of a recording by YIN (``librosa.yin``: no voicing decision, so
    tens of times faster than pYIN), median-filtered over ``median_frames`` frames (YIN errs for a
    frame or two at note changes); frames more than ``quiet_db`` below the loudest hold the last
    sounding frame's pitch (the first one's before it), as `audio.pyin_f0_hz` holds unvoiced ones.

    Returns ``f0_hz`` [shape=(1 + n // hop_length,)] float32.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0_hz = librosa.yin(np.asarray(y, np.float32), fmin=fmin_hz, fmax=fmax_hz, sr=sr, frame_length=1024,
                        hop_length=hop_length)
    rms_db = librosa.amplitude_to_db(librosa.feature.rms(y=y, frame_length=1024, hop_length=hop_length)[0])
    sounding = np.flatnonzero(rms_db >= rms_db.max() - quiet_db)
    held = sounding[np.maximum(np.searchsorted(sounding, np.arange(len(f0_hz)), side="right") - 1, 0)]
    return scipy.ndimage.median_filter(f0_hz[held], median_frames, mode="nearest").astype(np.float32)


def bend_controls(f0_hz, loudness_db, hop_length: int, sr: int, transpose: float = 0.0, vibrato_cents: float = 0.0,
                  vibrato_hz: float = 5.5, crescendo_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Bend frame-wise controls [shape=(T,)]: ``f0 * 2^((transpose + vibrato(t) / 100) / 12)`` with
    ``vibrato(t) = vibrato_cents sin(2 pi vibrato_hz t)``, and ``loudness`` plus a linear ramp from
    ``-crescendo_db / 2`` to ``+crescendo_db / 2`` over the clip.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0_hz, loudness_db = np.asarray(f0_hz, np.float64), np.asarray(loudness_db, np.float64)
    t = np.arange(len(f0_hz)) * hop_length / sr
    cents = 100 * transpose + vibrato_cents * np.sin(2 * math.pi * vibrato_hz * t)
    ramp = crescendo_db * (np.linspace(0, 1, len(loudness_db)) - 0.5)
    return (f0_hz * 2 ** (cents / 1200)).astype(np.float32), (loudness_db + ramp).astype(np.float32)


def controls_figure(f0_hz, loudness_db, y, config, title: str = ""):
    """The controls over time (pitch as a MIDI number, loudness in dB) and the played audio's log
    spectrogram (plain imshow, at 72 dpi: fast enough for an interaction).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    t = np.arange(len(f0_hz)) * config.hop_length / config.sr
    fig, (ax_f0, ax_loud, ax_spec) = plt.subplots(1, 3, figsize=(9, 2.4), dpi=72)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.78, wspace=0.25)
    fig.suptitle(title, fontsize=10)
    ax_f0.plot(t, librosa.hz_to_midi(f0_hz), color="tab:blue")
    ax_f0.set(xlabel="time (s)", title="pitch (MIDI number)")
    ax_loud.plot(t, loudness_db, color="tab:orange")
    ax_loud.set(xlabel="time (s)", title="loudness (dB)")
    log_magnitude = audio.log_magnitude(y, 512, 128) * (20 / math.log(10))
    ax_spec.imshow(np.maximum(log_magnitude, -80), origin="lower", aspect="auto", cmap="magma",
                   extent=(0, len(y) / config.sr, 0, config.sr / 2000))
    ax_spec.set(xlabel="time (s)", title="what the decoder plays (kHz)")
    return fig


class SynthesisPlayground:
    """Decoders and held-out tunes for the explorer; a tune's controls are computed once.

    Parameters
    ----------
    decoders : {instrument: DDSP decoder}, e.g. `shipped_decoders`
    tunes : the tunes to pick from (their opening ``PREVIEW_QUARTERS`` are played)

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def __init__(self, decoders: dict, tunes):
        if not decoders:
            raise BadInputError("no DDSP decoder to play: train one with python -m musiclab train ddsp")
        self.decoders, self.tunes = decoders, tunes
        self.config = next(iter(decoders.values())).config
        self._controls = {}

    def tune_controls(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(flute y, f0_hz from the score, loudness_db of the flute rendering)`` of tune ``index``."""
        if index in self._controls:
            return self._controls[index]
        c = self.config
        y, notes = synthesis.render_melodies([self.tunes[index]], SOURCE_PROGRAM, PREVIEW_QUARTERS, c.sr)[0]
        loudness_db = audio.a_weighted_loudness_db(y, c.sr, c.loudness_n_fft, c.hop_length)
        f0_hz, _ = audio.notes_to_f0_hz(notes, len(loudness_db), synthesis.QPM, c.sr, c.hop_length)
        self._controls[index] = (y, f0_hz, loudness_db)
        return self._controls[index]

    def play(self, instrument: str, f0_hz, loudness_db) -> np.ndarray:
        """Controls (loudness on any level: shifted to the decoder's training mean) -> ``y``."""
        model = self.decoders[instrument]
        return ddsp.synthesise(model, f0_hz, synthesis.at_decoder_level(model, loudness_db))

    def tune_view(self, instrument: str, index: int, transpose: float = 0.0, vibrato_cents: float = 0.0,
                  vibrato_hz: float = 5.5, crescendo_db: float = 0.0):
        """One interaction on a tune: ``(figure, y, text)``."""
        _, f0_hz, loudness_db = self.tune_controls(index)
        f0_hz, loudness_db = bend_controls(f0_hz, loudness_db, self.config.hop_length, self.config.sr, transpose,
                                           vibrato_cents, vibrato_hz, crescendo_db)
        y = self.play(instrument, f0_hz, loudness_db)
        title = f"{self.tunes[index].title[:28]} on the {instrument}"
        return controls_figure(f0_hz, loudness_db, y, self.config, title), y, title

    def recording_view(self, instrument: str, y, sr: int, name: str = "recording"):
        """One interaction on a recording (checked by `recipes.synthesis.check_synthesis_input`):
        its YIN pitch and loudness through the decoder, ``(figure, y, text)``."""
        c = self.config
        y = synthesis.check_synthesis_input(y, sr, c.sr, name, "timbre transfer")
        f0_hz = fast_f0_hz(y, sr, c.hop_length)
        played = synthesis.transfer_timbre(self.decoders[instrument], y, sr, f0_hz, name)
        loudness_db = audio.a_weighted_loudness_db(y, sr, c.loudness_n_fft, c.hop_length)
        title = f"{name} on the {instrument}"
        return controls_figure(f0_hz, loudness_db, played, c, title), played, title


def explorer(playground: SynthesisPlayground, upload_dir):
    """The live widget: decoder, tune, transpose, vibrato depth and rate, crescendo; or upload a
    recording (WAV, FLAC, OGG, MP3), written to ``upload_dir`` and read by
    `datasets.user.read_recording` (checked, mono, resampled to the decoder's rate).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    import ipywidgets as w

    instrument = w.Dropdown(options=list(playground.decoders), description="decoder")
    tune = w.Dropdown(options=[(t.title[:38], i) for i, t in enumerate(playground.tunes)], description="tune")
    transpose = w.IntSlider(value=0, min=-12, max=12, description="transpose")
    vibrato = w.FloatSlider(value=0.0, min=0.0, max=100.0, step=10.0, description="vibrato (ct)")
    rate = w.FloatSlider(value=5.5, min=2.0, max=9.0, step=0.5, description="rate (Hz)")
    crescendo = w.FloatSlider(value=0.0, min=-20.0, max=20.0, step=2.0, description="crescendo dB")
    upload = w.FileUpload(accept=".wav,.flac,.ogg,.mp3", multiple=False, description="or upload")
    out = w.Output()
    state = {"recording": None}

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                if state["recording"] is not None:
                    fig, y, text = playground.recording_view(instrument.value, *state["recording"])
                else:
                    fig, y, text = playground.tune_view(instrument.value, tune.value, transpose.value, vibrato.value,
                                                        rate.value, crescendo.value)
            except BadInputError as error:  # it names the problem (e.g. of an uploaded file)
                print(f"cannot play this: {error}")
                return
            display(fig)
            plt.close(fig)
            display(audio.player(y, playground.config.sr, text))

    def pick_tune(*_):
        state["recording"] = None
        redraw()

    def read_upload(*_):
        path = uploads.save_first_upload(upload, upload_dir)
        if path is None:
            return
        try:
            y, _ = datasets.user.read_recording(path, playground.config.sr, synthesis.MIN_DURATION_S,
                                                "timbre transfer needs a few notes")
        except BadInputError as error:  # it names the file and the problem
            with out:
                out.clear_output()
                print(error)
            return
        state["recording"] = (y, playground.config.sr, path.name)
        redraw()

    tune.observe(pick_tune, "value")
    upload.observe(read_upload, "value")
    for control in (instrument, transpose, vibrato, rate, crescendo):
        control.observe(redraw, "value")
    redraw()
    return w.VBox([w.HBox([instrument, tune, upload]), w.HBox([transpose, vibrato]), w.HBox([rate, crescendo]), out])


def gallery_items(playground: SynthesisPlayground, index: int = 0, settings=None) -> list[dict]:
    """The explorer's static gallery: one tune on every decoder with a few bends; each card an image
    and a player. ``settings``: ``(label, transpose, vibrato_cents, vibrato_hz, crescendo_db)`` rows.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    settings = settings or [("as played", 0, 0.0, 5.5, 0.0), ("an octave down", -12, 0.0, 5.5, 0.0),
                            ("vibrato 50 cents at 6 Hz", 0, 50.0, 6.0, 0.0), ("crescendo of 20 dB", 0, 0.0, 5.5, 20.0)]
    items = []
    for instrument in playground.decoders:
        for label, *bend in settings:
            fig, y, text = playground.tune_view(instrument, index, *bend)
            items.append({"title": f"{text}: {label}", "image": plot.figure_to_png_base64(fig, dpi=55),
                          "audio": audio.player(y, playground.config.sr)})
            plt.close(fig)
    return items
