"""Interactive explorers (ipywidgets) and their static galleries for the HTML book.

A widget needs a running kernel; the HTML book has none. So every explorer comes with a *gallery*:
the same views pre-rendered as images and embedded audio. `show` displays the live widget in
Jupyter; during the book build (``MUSICLAB_BOOK_BUILD=1``, set by ``make book``) it displays a
short note instead, and the gallery that follows in the chapter carries the content.

One module per chapter holds that chapter's explorers (``widgets.style_transfer_vae``,
``widgets.style_transfer_gan``); the shared pieces and chapter 1's browser live here.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import html
import os

import matplotlib.pyplot as plt
from IPython.display import HTML, display

from .. import audio, plot
from . import style_transfer_gan, style_transfer_vae

# Melodies are cut to this many quarter notes in explorers so that one interaction stays fast,
# and to fewer in galleries, which are embedded in the HTML page.
PREVIEW_QUARTERS = 32
GALLERY_QUARTERS = 16


def in_book_build() -> bool:
    """True while ``make book`` executes the notebooks for the static HTML book."""
    return os.environ.get("MUSICLAB_BOOK_BUILD") == "1"


def show(widget) -> None:
    """Display ``widget`` in a live kernel, or a pointer to the gallery in the HTML book."""
    if in_book_build():
        display(HTML("<p><em>Interactive widget: open this notebook in JupyterLab or Colab to use it. "
                     "The gallery below shows what it displays.</em></p>"))
    else:
        display(widget)


def gallery(items: list[dict], columns: int = 2) -> HTML:
    """An HTML grid of cards, each ``{"title": str, "image": base64 PNG, "audio": HTML or None}``."""
    cards = []
    for item in items:
        parts = [f"<div style='font-weight:600;margin:4px 0'>{html.escape(item['title'])}</div>"]
        if item.get("image"):
            parts.append(f"<img style='max-width:100%' alt='{html.escape(item['title'])}' "
                         f"src='data:image/png;base64,{item['image']}'/>")
        if item.get("audio") is not None:
            parts.append(item["audio"].data if isinstance(item["audio"], HTML) else str(item["audio"]))
        cards.append(f"<div class='musiclab-card' style='padding:6px'>{''.join(parts)}</div>")
    style = f"display:grid;grid-template-columns:repeat({columns},minmax(0,1fr));gap:8px"
    # Players shrink to their card, so several columns fit the page.
    css = "<style>.musiclab-gallery audio{width:100%}</style>"
    return HTML(f"{css}<div class='musiclab-gallery' style='{style}'>{''.join(cards)}</div>")


# Chapter 1: the corpus browser ---------------------------------------------------------------------


def preview_notes(notes, max_quarters: float = PREVIEW_QUARTERS):
    """The notes that start within the first ``max_quarters`` quarter notes."""
    return [note for note in notes if note.start < max_quarters]


def tune_view(tune, program: int = 0, qpm: int = 120, max_quarters: float = PREVIEW_QUARTERS):
    """Render a tune's opening on ``program``: returns ``(figure, y)`` with notes and log-mel spectrogram."""
    notes = preview_notes(tune.notes, max_quarters)
    y = audio.render_notes(notes, program=program, qpm=qpm)
    fig, (ax_notes, ax_spec) = plt.subplots(2, 1, figsize=(8, 4.5), layout="constrained")
    plot.plot_notes(notes, ax=ax_notes,
                    title=f"{tune.title} ({tune.region}, {tune.meter}, {tune.key} {tune.mode})")
    spec = audio.log_mel(y, sr=audio.DEFAULT_SR)
    plot.plot_spectrogram(spec, sr=audio.DEFAULT_SR, hop_length=256, ax=ax_spec,
                          title=f"log-mel spectrogram, {audio.program_name(program)}")
    return fig, y


def corpus_browser(tunes, programs=(0, 40, 73, 24)):
    """Pick a region, a tune and an instrument; see the notes and spectrogram, hear the tune."""
    import ipywidgets as w

    regions = sorted({t.region for t in tunes})
    region = w.Dropdown(options=regions, description="region")
    tune = w.Dropdown(description="tune", layout=w.Layout(width="420px"))
    program = w.Dropdown(options=[(audio.program_name(p), p) for p in programs], description="instrument")
    out = w.Output()

    def update_tunes(*_):
        tune.options = [(f"{t.title[:40]} [{t.meter}]", i) for i, t in enumerate(tunes) if t.region == region.value][:200]
        # ipywidgets 8 leaves the value empty after new options; show the region's first tune.
        tune.value = tune.options[0][1] if tune.options else None

    def redraw(*_):
        if tune.value is None:
            return
        with out:
            out.clear_output(wait=True)
            fig, y = tune_view(tunes[tune.value], program=program.value)
            display(fig)
            plt.close(fig)
            display(audio.player(y, audio.DEFAULT_SR))

    region.observe(update_tunes, "value")
    tune.observe(redraw, "value")
    program.observe(redraw, "value")
    update_tunes()
    return w.VBox([w.HBox([region, tune, program]), out])


def corpus_gallery(tunes, program: int = 0, per_region: int = 1) -> HTML:
    """The browser's view for the first ``per_region`` tunes of each region, pre-rendered."""
    items = []
    for region in sorted({t.region for t in tunes}):
        for tune in [t for t in tunes if t.region == region][:per_region]:
            fig, y = tune_view(tune, program=program, max_quarters=GALLERY_QUARTERS)
            items.append({"title": f"{region}: {tune.title}", "image": plot.figure_to_png_base64(fig, dpi=60),
                          "audio": audio.player(y, audio.DEFAULT_SR)})
    return gallery(items)
