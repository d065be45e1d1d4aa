"""Chapter 9's CycleGAN explorer: translate a tune's timbre (one instrument to the other) or its
opening phrase (one region to the other) at a chosen strength, see and hear it before and after.

Chapter: notebooks/09_style_transfer_gan.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from .. import audio, datasets, plot, recipes, style, symbolic
from ..errors import BadInputError
from ..models import cyclegan
from . import uploads


def grid_audio(grid, program: int = 0):
    """A grid [shape=(T,)] rendered to audio at ``audio.DEFAULT_SR`` (a short silence if it has no note).

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    notes = symbolic.grid_to_notes(np.asarray(grid))
    return audio.render_notes(notes, program=program) if notes else np.zeros(1600, np.float32)


def phrase_figure(grids, titles, colors):
    """4-bar phrases [each shape=(64,)] as piano rolls side by side, one title and colour each.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    fig, axes = plt.subplots(1, len(grids), figsize=(3.8 * len(grids), 2.3), squeeze=False)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.2, top=0.87, wspace=0.25)
    for ax, grid, title, color in zip(axes[0], grids, titles, colors):
        plot.plot_notes(symbolic.grid_to_notes(np.asarray(grid)), ax=ax, title=title, color=color)
        ax.set_xlim(0, 16)
    return fig


def quick_spectrograms(log_mels, titles):
    """Log-mels [each shape=(n_mels, T)] side by side, drawn with plain imshow (fast enough for an interaction).

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    fig, axes = plt.subplots(1, len(log_mels), figsize=(7.4, 2.2), sharey=True)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.22, top=0.87, wspace=0.06)
    for ax, log_mel, title in zip(axes, log_mels, titles):
        ax.imshow(np.maximum(log_mel, cyclegan.FLOOR_DB / 20 * math.log(10)), origin="lower", aspect="auto",
                  cmap="magma", extent=(0, log_mel.shape[1] * cyclegan.HOP_LENGTH / cyclegan.SR, 0, cyclegan.N_MELS))
        ax.set(title=title, xlabel="time (s)")
    axes[0].set_ylabel("mel band")
    return fig


def from_first_note(notes):
    """The notes shifted so that the first starts at 0."""
    return [n._replace(start=n.start - notes[0].start) for n in notes]


def opening_phrase(notes):
    """The first 4-bar phrase [shape=(64,)] of a melody that `symbolic.slice_grid` accepts (as in
    training), else its opening, padded with rests.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    grid = symbolic.notes_to_grid(from_first_note(notes))
    phrases = symbolic.slice_grid(grid, recipes.cyclegan.PHRASE_BARS)
    return phrases[0] if len(phrases) else np.pad(grid[:64], (0, max(0, 64 - len(grid))))


@dataclass
class CycleTransfer:
    """The chapter's two shipped CycleGANs, as the explorer and the gallery use them.

    Parameters
    ----------
    timbre_model : the timbre CycleGAN (log-mels of instrument A <-> instrument B).
    symbolic_model : the symbolic CycleGAN (4-bar phrases of region A <-> region B).
    classifier : the style classifier (chapter 11) that measures the region.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """

    timbre_model: object
    symbolic_model: object
    classifier: object

    @property
    def programs(self) -> tuple[int, int]:
        return int(self.timbre_model.config.domain_a), int(self.timbre_model.config.domain_b)

    @property
    def regions(self) -> tuple[str, str]:
        return tuple(recipes.cyclegan.SYMBOLIC_REGIONS)

    def timbre_view(self, notes, direction: str = "a_to_b", strength: float = 1.0):
        """Input and output (strength s) for the tune's opening, scored against the truth: (figure, audio, text).

        Chapter: notebooks/09_style_transfer_gan.ipynb
        """
        notes = from_first_note(notes)
        program_a, program_b = self.programs
        source, target = (program_a, program_b) if direction == "a_to_b" else (program_b, program_a)
        x = cyclegan.melody_log_mel(notes, source, 8)
        truth = cyclegan.melody_log_mel(notes, target, 8)
        y = cyclegan.translate_log_mel(self.timbre_model, x, direction, strength)
        fig = quick_spectrograms([x, y], [f"input ({audio.program_name(source)})", f"output, s = {strength:.2f}"])
        lsd_x, lsd_y = (audio.log_spectral_distance_db(v, truth, cyclegan.FLOOR_DB) for v in (x, y))
        text = f"LSD to the true {audio.program_name(target)}: input {lsd_x:.1f} dB, output {lsd_y:.1f} dB"
        return fig, cyclegan.log_mel_to_audio(y), text

    def melody_view(self, grid, direction: str = "a_to_b", strength: float = 1.0):
        """Source and translated 4-bar phrase [shape=(64,)] at ``strength``: returns (figure, audio, text).

        Chapter: notebooks/09_style_transfer_gan.ipynb
        """
        region_a, region_b = self.regions
        target = region_b if direction == "a_to_b" else region_a
        moved = cyclegan.translate_grids(self.symbolic_model, grid[None], direction, strength)[0]
        kept = style.content_preservation(grid[None], moved[None])
        fig = phrase_figure([grid, moved], ["source", f"translated, s = {strength:.2f}"], ["tab:blue", "tab:orange"])
        text = (f"P({target}): source {style.transfer_strength(grid[None], target, self.classifier):.2f}, result "
                f"{style.transfer_strength(moved[None], target, self.classifier):.2f}; onset agreement "
                f"{kept['onset_agreement']:.2f}, contour agreement {kept['contour_agreement']:.2f}")
        return fig, grid_audio(moved), text

    def source_audio(self, notes, kind: str, direction: str):
        """The explorer's input as heard: the tune's opening on the source instrument, or its 4-bar phrase."""
        if kind == "melody":
            return grid_audio(opening_phrase(notes))
        notes = [n for n in from_first_note(notes) if n.start < 8]
        program_a, program_b = self.programs
        return audio.render_notes(notes, program=program_a if direction == "a_to_b" else program_b)


def transfer_explorer(transfer: CycleTransfer, tunes, upload_dir: Path):
    """Pick a tune (or upload a MIDI/ABC melody), timbre or melody, a direction and a strength s.

    Parameters
    ----------
    transfer : CycleTransfer, the two translators.
    tunes : the tunes to pick from.
    upload_dir : folder an uploaded file is written to before it is read.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    import ipywidgets as w

    (name_a, name_b), (region_a, region_b) = map(audio.program_name, transfer.programs), transfer.regions
    tune = w.Dropdown(options=[(f"{t.title[:38]} ({t.region})", i) for i, t in enumerate(tunes)],
                      description="tune", layout=w.Layout(width="420px"))
    upload = w.FileUpload(accept=".mid,.midi,.abc", multiple=False, description="or upload")
    kind = w.ToggleButtons(options=["timbre", "melody"], description="transfer")
    direction = w.ToggleButtons(options=[(f"{name_a} -> {name_b} / {region_a} -> {region_b}", "a_to_b"),
                                         (f"{name_b} -> {name_a} / {region_b} -> {region_a}", "b_to_a")])
    strength = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.25, description="strength s")
    out = w.Output()
    state = {"notes": tunes[0].notes}

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                if kind.value == "timbre":
                    fig, y, text = transfer.timbre_view(state["notes"], direction.value, strength.value)
                else:
                    fig, y, text = transfer.melody_view(opening_phrase(state["notes"]), direction.value, strength.value)
            except BadInputError as error:  # it names the problem (e.g. of an uploaded file)
                print(f"cannot transfer this melody: {error}")
                return
            display(fig)
            plt.close(fig)
            print(text)
            display(audio.player_grid([[("before", transfer.source_audio(state["notes"], kind.value, direction.value)),
                                        ("after", y)]], audio.DEFAULT_SR))

    def pick_tune(*_):
        state["notes"] = tunes[tune.value].notes
        redraw()

    def read_upload(*_):
        path = uploads.save_first_upload(upload, upload_dir)
        if path is None:
            return
        try:
            state["notes"] = symbolic.grid_to_notes(datasets.user.read_melody(path)[0])
        except BadInputError as error:
            with out:
                out.clear_output()
                print(f"{path.name}: {error}")
            return
        redraw()

    tune.observe(pick_tune, "value")
    upload.observe(read_upload, "value")
    for control in (kind, direction, strength):
        control.observe(redraw, "value")
    redraw()
    return w.VBox([w.HBox([tune, upload]), kind, direction, strength, out])
