"""Widgets work without a browser (their callbacks run), galleries embed images and audio, plots draw."""
import numpy as np
import pytest

from musiclab import plot, symbolic, widgets
from musiclab.datasets import Tune


def _tune(region, title, pitches):
    notes = [symbolic.Note(p, i * 1.0, 1.0) for i, p in enumerate(pitches)]
    return Tune(f"test/{title}", region, "test", title, "4/4", "C", "major", "", symbolic.notes_to_grid(notes), "train")


TUNES = [_tune("German", "up", [60, 62, 64, 65, 67, 69, 71, 72]),
         _tune("Irish", "down", [72, 71, 69, 67, 65, 64, 62, 60])]


def test_corpus_browser_redraws_on_selection(monkeypatch):
    drawn = []
    real_view = widgets.tune_view
    monkeypatch.setattr(widgets, "tune_view", lambda tune, **kw: drawn.append((tune.title, kw)) or real_view(tune, **kw))
    browser = widgets.corpus_browser(TUNES, programs=(0, 73))
    controls, _ = browser.children
    region, tune, program = controls.children
    region.value = "Irish"
    assert [label for label, _ in tune.options] == ["down [4/4]"]
    program.value = 73
    assert drawn[-1] == ("down", {"program": 73})


def test_gallery_embeds_images_and_audio():
    html = widgets.corpus_gallery(TUNES, program=0).data
    assert html.count("data:image/png;base64,") == 2 and html.count("<audio") == 2
    assert "musiclab-gallery" in html


def test_show_points_to_the_gallery_during_the_book_build(monkeypatch, capsys):
    monkeypatch.setenv("MUSICLAB_BOOK_BUILD", "1")
    assert widgets.in_book_build()
    monkeypatch.setenv("MUSICLAB_BOOK_BUILD", "0")
    assert not widgets.in_book_build()


@pytest.mark.parametrize("draw", [
    lambda: plot.plot_notes(TUNES[0].notes, title="notes"),
    lambda: plot.plot_pianoroll(symbolic.notes_to_pianoroll(TUNES[0].notes)),
    lambda: plot.plot_waveform(np.sin(np.arange(1600) / 10), sr=16000),
    lambda: plot.plot_spectrogram(np.random.default_rng(0).normal(size=(80, 20)), sr=16000, hop_length=256),
    lambda: plot.plot_learning_curves([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]),
])
def test_plots_draw(draw):
    ax = draw()
    assert ax.figure is not None
    assert plot.figure_to_png_base64(ax.figure).startswith("iVBOR")  # PNG magic, base64


def test_pitch_names():
    assert [plot.pitch_name(p) for p in (60, 69, 61, 21)] == ["C4", "A4", "C#4", "A0"]


def test_compress_png_shrinks_a_figure_and_keeps_its_pixels():
    import io

    from PIL import Image

    ax = plot.plot_spectrogram(np.random.default_rng(0).normal(size=(80, 200)), sr=16000, hop_length=256)
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=100)
    original = buffer.getvalue()
    smaller = plot.compress_png(original)
    pixels = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), float) for data in (original, smaller)]
    assert len(smaller) < 0.7 * len(original) and Image.open(io.BytesIO(smaller)).mode == "P"
    assert np.abs(pixels[0] - pixels[1]).max() <= 20 and np.abs(pixels[0] - pixels[1]).mean() < 1.0
    transparent = io.BytesIO()
    ax.figure.savefig(transparent, format="png", dpi=50, transparent=True)
    assert plot.compress_png(transparent.getvalue()) == transparent.getvalue()  # alpha kept as it is


def test_architecture_trace_follows_the_forward_pass():
    import torch
    from torch import nn

    from musiclab import plot

    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    rows = plot.trace_architecture(model, torch.zeros(4, 5))
    assert [r["name"] for r in rows] == ["0", "1", "2"]
    assert [r["output_shape"] for r in rows] == [(4, 7), (4, 7), (4, 3)]
    assert [r["parameters"] for r in rows] == [5 * 7 + 7, 0, 7 * 3 + 3]
    ax = plot.plot_architecture(model, torch.zeros(4, 5))
    texts = [t.get_text() for t in ax.texts]
    assert any("Linear" in t and "(4, 3)" in t for t in texts) and "66 parameters" in ax.get_title()
