"""Chapter 8's phrase-transfer explorer: move a 2-bar phrase's VAE code towards a region, a mode or
a density, see and hear it before and after.

Chapter: notebooks/08_style_transfer_vae.ipynb
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from .. import audio, datasets, plot, style, symbolic
from ..errors import BadInputError

PROGRAM = 73  # the flute the chapter renders every phrase on


def grid_audio(grid, program: int = PROGRAM):
    """A grid [shape=(T,)] rendered to audio at ``audio.DEFAULT_SR``.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    return audio.render_notes(symbolic.grid_to_notes(np.asarray(grid)), program=program)


@dataclass
class PhraseTransfer:
    """The chapter's three kinds of move of a 2-bar phrase, measured before and after.

    Parameters
    ----------
    melody_vae : the melody VAE (2-bar phrases).
    classifier : the style classifier (chapter 11) that measures region and mode.
    region_centroids : dict, region -> mean latent code [shape=(z_dim,)].
    mode_vectors : dict, "minor"/"major" -> latent direction [shape=(z_dim,)] (learned in C).
    density_vectors : dict, "more notes"/"fewer notes" -> latent direction [shape=(z_dim,)].

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """

    melody_vae: object
    classifier: object
    region_centroids: dict
    mode_vectors: dict
    density_vectors: dict
    _players: dict = field(default_factory=dict, repr=False)

    @property
    def targets(self) -> list[str]:
        """Every target the explorer offers: the regions, then the modes, then the densities."""
        return list(datasets.REGIONS) + list(self.mode_vectors) + list(self.density_vectors)

    def _move(self, phrase, vector, alpha):
        return style.decode_moved(self.melody_vae, style.latent_means(self.melody_vae, phrase[None]), vector, alpha)[0]

    def transfer(self, phrase, target: str, alpha: float, source_region=None, key=None):
        """Move one 2-bar phrase [shape=(32,)] towards ``target``.

        Returns the moved phrase [shape=(32,)], a description of what was measured before and after
        (two strings), and the content measures ``{"onset": float, "contour": float}``.

        Chapter: notebooks/08_style_transfer_vae.ipynb
        """
        phrase = np.asarray(phrase)
        if target in self.mode_vectors:
            if key is None:
                raise BadInputError("a mode target needs the tune's key: pick a corpus tune")
            # the mode vector was learned on tunes in C: move the phrase there and back
            shift = (-symbolic.pitch_class_of(key) + 6) % 12 - 6
            in_c = symbolic.transpose_grid(phrase, shift)
            after = symbolic.transpose_grid(self._move(in_c, self.mode_vectors[target], alpha), -shift)
        elif target in self.density_vectors:
            after = self._move(phrase, self.density_vectors[target], alpha)
        else:
            region_names = list(self.classifier.labels["region"])
            source_region = source_region or region_names[
                int(self.classifier.predict_proba(phrase[None])["region"].argmax())]
            after = self._move(phrase, self.region_centroids[target] - self.region_centroids[source_region], alpha)
        pair = np.stack([phrase, after])
        if target in self.mode_vectors:
            p = style.target_probabilities(pair, target, self.classifier, task="mode")
            measured = [f"P({target}) {x:.2f}" for x in p]
        elif target in self.density_vectors:
            measured = [f"{n} notes" for n in (pair >= 2).sum(1)]
        else:
            p = style.target_probabilities(pair, target, self.classifier)
            p_pair = style.target_probabilities(pair, target, self.classifier, versus=source_region) \
                if source_region != target else p
            measured = [f"P({target}) {a:.2f}; {target} vs {source_region} {b:.2f}" for a, b in zip(p, p_pair)]
        kept = {"onset": style.onset_agreement(phrase, after), "contour": style.contour_agreement(phrase, after)}
        return after, measured, kept

    def phrase_player(self, grid, title: str):
        """The embedded player of a phrase; the source's is made once per phrase, not at every slider move."""
        key = (np.asarray(grid).tobytes(), title)
        if key not in self._players:
            self._players[key] = audio.player(grid_audio(grid), audio.DEFAULT_SR, title=title)
        return self._players[key]

    def view(self, phrase, target: str, alpha: float, source_region=None, key=None):
        """Piano rolls of the phrase before and after and two players: ``(figure, before, after)``.

        A plain figure: constrained layout costs 100 ms per interaction.

        Chapter: notebooks/08_style_transfer_vae.ipynb
        """
        after, measured, kept = self.transfer(phrase, target, alpha, source_region, key)
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.3), sharey=True)
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.22, top=0.78, wspace=0.05)
        for ax, grid, title, color in ((axes[0], phrase, f"before: {measured[0]}", "tab:blue"),
                                       (axes[1], after, f"after, alpha {alpha:g}: {measured[1]}", "tab:red")):
            plot.plot_notes(symbolic.grid_to_notes(grid), ax=ax, title=title, color=color)
            ax.set_xlim(0, 8)
        fig.suptitle(f"onset agreement {kept['onset']:.2f}, contour agreement {kept['contour']:.2f}", fontsize=9)
        return fig, self.phrase_player(phrase, "before"), audio.player(grid_audio(after), audio.DEFAULT_SR, title="after")


def phrases_from_upload(item: dict):
    """The 2-bar phrases [shape=(N, 32)] of an uploaded MIDI/ABC file (read by musiclab.datasets.user, errors named).

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(item["name"]).name
        path.write_bytes(bytes(item["content"]))
        try:
            grid, _ = datasets.user.read_melody(path)
        except BadInputError as error:  # name the reader's file, not the temporary copy
            raise BadInputError(str(error).replace(str(path), item["name"])) from None
    phrases = symbolic.slice_grid(grid, 2)
    if not len(phrases):
        raise BadInputError(f"{item['name']}: no 2-bar phrase with notes (too short or too many rests)")
    return phrases


def transfer_explorer(transfer: PhraseTransfer, tunes):
    """Pick a held-out tune (or upload one), a phrase, a target and a strength; see and hear the move.

    Parameters
    ----------
    transfer : PhraseTransfer, the moves the explorer offers.
    tunes : the tunes to pick from (the first 300 with a 2-bar phrase are offered).

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    import ipywidgets as w

    test_tunes = [t for t in tunes if len(symbolic.slice_grid(t.grid, 2))][:300]
    tune = w.Dropdown(options=[(f"{t.region}: {t.title[:34]}", i) for i, t in enumerate(test_tunes)], description="tune",
                      layout=w.Layout(width="380px"))
    bars = w.IntSlider(value=0, min=0, max=0, description="phrase")
    target = w.Dropdown(options=transfer.targets, value="Irish", description="target")
    alpha = w.FloatSlider(value=1.5, min=-1.0, max=4.0, step=0.25, description="strength")
    upload = w.FileUpload(accept=".mid,.midi,.abc", description="your tune")
    out = w.Output()

    def phrases_and_labels():
        if upload.value:
            item = upload.value[0] if isinstance(upload.value, tuple) else next(iter(upload.value.values()))
            return phrases_from_upload(item), None, None
        t = test_tunes[tune.value]
        return symbolic.slice_grid(t.grid, 2), t.region, t.key

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                phrases, region, key = phrases_and_labels()
                bars.max = len(phrases) - 1
                fig, before, after = transfer.view(phrases[min(bars.value, len(phrases) - 1)], target.value,
                                                   alpha.value, region, key)
            except BadInputError as error:
                print(f"cannot transfer this: {error}")
                return
            display(fig)
            plt.close(fig)
            display(before, after)

    for control in (tune, bars, target, alpha, upload):
        control.observe(redraw, "value")
    redraw()
    return w.VBox([w.HBox([tune, bars]), w.HBox([target, alpha, upload]), out])
