"""Figures of the book: waveforms, spectrograms, piano rolls, melodies, learning curves.

Every function draws on ``ax`` (a new figure when it is None) and returns the axes.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def _axes(ax, figsize=(8, 2.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name, e.g. 60 -> 'C4'."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def plot_waveform(y: np.ndarray, sr: int, ax=None, title: str | None = None):
    """Amplitude against time in seconds. ``y`` : ndarray [shape=(n,)]."""
    ax = _axes(ax)
    ax.plot(np.arange(len(y)) / sr, y, linewidth=0.5)
    ax.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, len(y) / sr), title=title)
    return ax


def plot_spectrogram(spec: np.ndarray, sr: int, hop_length: int, ax=None, y_axis: str = "mel",
                     title: str | None = None, fmax: float | None = None):
    """Show a log-magnitude or log-mel spectrogram [shape=(n_bins, T)], in natural-log units."""
    import librosa.display

    ax = _axes(ax)
    image = librosa.display.specshow(spec, sr=sr, hop_length=hop_length, x_axis="time",
                                     y_axis=y_axis, ax=ax, cmap="magma", fmax=fmax)
    ax.set(title=title)
    ax.figure.colorbar(image, ax=ax, label="log magnitude")
    return ax


def plot_pianoroll(roll: np.ndarray, frames_per_quarter: int = 1, lowest_pitch: int = 21, ax=None,
                   title: str | None = None):
    """Show a piano roll [shape=(T, n_keys)] with time in quarter notes and pitch names."""
    ax = _axes(ax)
    roll = np.asarray(roll)
    active = np.flatnonzero(roll.any(axis=0))
    low, high = (active.min(), active.max()) if active.size else (0, roll.shape[1] - 1)
    ax.imshow(roll[:, low:high + 1].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, roll.shape[0] / frames_per_quarter, lowest_pitch + low - 0.5, lowest_pitch + high + 0.5))
    _pitch_ticks(ax, lowest_pitch + low, lowest_pitch + high)
    ax.set(xlabel="time (quarter notes)", title=title)
    return ax


def plot_notes(notes, ax=None, title: str | None = None, color: str = "tab:blue"):
    """Draw notes (``Note(pitch, start, duration, velocity)``, times in quarter notes) as bars."""
    ax = _axes(ax)
    notes = list(notes)
    if not notes:
        ax.set(title=title)
        return ax
    for note in notes:
        ax.add_patch(Rectangle((note.start, note.pitch - 0.4), note.duration, 0.8, color=color))
    pitches = [n.pitch for n in notes]
    ax.set_xlim(0, max(n.start + n.duration for n in notes))
    ax.set_ylim(min(pitches) - 1.5, max(pitches) + 1.5)
    _pitch_ticks(ax, min(pitches), max(pitches))
    ax.set(xlabel="time (quarter notes)", title=title)
    ax.grid(axis="x", alpha=0.3)
    return ax


def _pitch_ticks(ax, low: int, high: int):
    ticks = [p for p in range(low, high + 1) if p % 12 in (0, 7)] or [low]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks])


def plot_learning_curves(history: list[dict], keys: list[str] | None = None, ax=None,
                         title: str | None = None, ylabel: str = "loss (nats)"):
    """Plot logged values against the step; ``history`` is what `musiclab.train.fit` returns."""
    ax = _axes(ax, figsize=(6, 3))
    keys = keys or sorted({k for row in history for k in row} - {"step", "time_s"})
    for key in keys:
        rows = [row for row in history if key in row]
        ax.plot([row["step"] for row in rows], [row[key] for row in rows], label=key,
                marker="o" if len(rows) < 15 else None)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def compress_png(data: bytes) -> bytes:
    """A smaller PNG of the same figure: an opaque image becomes a 256-colour palette image.

    Figures are mostly flat colours; only anti-aliased edges and colormap gradients hold more, and
    the maximum-coverage palette keeps those within a few levels (the book's figures: at most 19 of
    255, 0.05 on average), about 2.5 times smaller. Transparent or already-palette images, and any
    that would not shrink, come back unchanged.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.mode not in ("RGB", "RGBA") or (image.mode == "RGBA" and image.getextrema()[3][0] < 255):
        return data
    palette = image.convert("RGB").quantize(256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return min(data, buffer.getvalue(), key=len)


def figure_to_png_base64(fig, dpi: int = 80) -> str:
    """Render a figure to a base64 PNG string (for HTML galleries; see `compress_png`) and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(compress_png(buffer.getvalue())).decode("ascii")


def plot_confusion(confusion, labels: list[str], ax=None, title: str | None = None):
    """A confusion matrix (rows = true class, columns = predicted) as row-normalised shades with counts.

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    confusion = np.asarray(confusion)
    ax = _axes(ax, figsize=(0.55 * len(labels) + 2, 0.5 * len(labels) + 1.5))
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(confusion):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


def trace_architecture(model, *inputs, **kwargs) -> list[dict]:
    """Run ``model(*inputs, **kwargs)`` once and record its top-level submodules in the order they
    were first called: ``[{"name", "kind", "parameters", "output_shape", "calls"}, ...]``.

    The shapes come from the forward pass itself (forward hooks), so a diagram drawn from them stays
    true to the model's config. A `ModuleList` or `ModuleDict` (which is never called itself) shows
    its items (``blocks[0]``, ``heads.region``); submodules the forward pass never called are left out.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    import torch
    from torch import nn

    rows, handles = {}, []

    def shape_of(output):
        if isinstance(output, torch.Tensor):
            return tuple(output.shape)
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            return tuple(output[0].shape)
        return None

    parts = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            parts += [(f"{name}[{i}]", item) for i, item in enumerate(child)]
        elif isinstance(child, nn.ModuleDict):
            parts += [(f"{name}.{key}", item) for key, item in child.items()]
        else:
            parts.append((name, child))
    for name, child in parts:
        def hook(module, args, output, name=name):
            if name in rows:
                rows[name]["calls"] += 1
                return
            rows[name] = {"name": name, "kind": type(module).__name__, "calls": 1, "output_shape": shape_of(output),
                          "parameters": sum(p.numel() for p in module.parameters())}
        handles.append(child.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return list(rows.values())


def plot_architecture(model, *inputs, ax=None, title: str | None = None, **kwargs):
    """Draw ``model`` as a column of boxes, one per top-level submodule in calling order, each with
    its class, parameter count and output shape (traced by `trace_architecture` on ``inputs``).

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    from matplotlib.patches import FancyBboxPatch

    rows = trace_architecture(model, *inputs, **kwargs)
    in_shapes = ", ".join(str(tuple(x.shape)) for x in inputs if hasattr(x, "shape"))
    labels = [f"input {in_shapes}"] + [
        f"{r['name']}: {r['kind']}" + (f" x{r['calls']}" if r["calls"] > 1 else "")
        + f"  ({r['parameters']:,} parameters)\n-> {r['output_shape']}" for r in rows]
    ax = _axes(ax, figsize=(6.5, 0.75 * len(labels) + 0.4))
    height, gap = 0.6, 0.35
    for i, label in enumerate(labels):
        y = -i * (height + gap)
        ax.add_patch(FancyBboxPatch((0, y - height), 1, height, boxstyle="round,pad=0.02",
                                    facecolor="#e8eef7" if i else "#f4f4f4", edgecolor="#4a6fa5"))
        ax.text(0.5, y - height / 2, label, ha="center", va="center", fontsize=8)
        if i:
            ax.annotate("", xy=(0.5, y + 0.01), xytext=(0.5, y + gap - 0.01),
                        arrowprops={"arrowstyle": "->", "color": "#4a6fa5"})
    total = sum(p.numel() for p in model.parameters())
    ax.set(xlim=(-0.05, 1.05), ylim=(-len(labels) * (height + gap), 0.1),
           title=title or f"{type(model).__name__}: {total:,} parameters")
    ax.axis("off")
    return ax
