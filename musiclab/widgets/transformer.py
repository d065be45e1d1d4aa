"""Chapter 5's explorers: what each attention head of the melody Transformer looks at over a held-out
tune (pick a tune, a layer and a head), and the Transformer continuing a tune you pick or upload
(temperature, top-p); the chapter renders static galleries of both for the HTML book.

Chapter: notebooks/05_transformer.ipynb
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import PowerNorm

from .. import plot, symbolic

MAX_TOKENS = 256  # 16 bars of 4/4: long enough to reach back to an eight-bar repeat


def tune_attention(model, tune, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """All attention maps of ``model`` over the start of ``tune`` (a `datasets.Tune`), conditioned on
    its labels: float32 [shape=(n_layers, H, L, L)], L = min(len(grid), max_tokens); row i is what
    the position that predicts token i looks at.

    Chapter: notebooks/05_transformer.ipynb
    """
    from ..models import transformer

    grid = tune.grid[:max_tokens].astype(np.int64)
    tokens = torch.tensor([[model.config.start_token, *grid[:-1].tolist()]])
    condition = [torch.tensor([i]) for i in model.condition_index(tune.region, tune.tune_type)]
    return transformer.attention_maps(model, tokens, *condition).numpy()


def distance_profile(maps: np.ndarray, max_distance: int) -> np.ndarray:
    """Mean attention weight at each distance 0..max_distance back, over the queries that can reach
    that far: [shape=(n_layers, H, max_distance + 1)] from maps [shape=(n_layers, H, L, L)].

    Chapter: notebooks/05_transformer.ipynb
    """
    L = maps.shape[-1]
    return np.stack([np.diagonal(maps, offset=-m, axis1=-2, axis2=-1).mean(-1) for m in range(min(max_distance, L - 1) + 1)],
                    -1)


def attention_figure(maps: np.ndarray, grid, layer: int, head: int, title: str = ""):
    """One head's attention map over a tune, with bar lines and the tune's notes along the top.

    Chapter: notebooks/05_transformer.ipynb
    """
    weights = maps[layer, head]
    L = len(weights)
    fig, (ax_notes, ax) = plt.subplots(2, 1, figsize=(5.2, 6), height_ratios=(1, 4), sharex=True,
                                       layout="constrained")
    plot.plot_notes(symbolic.grid_to_notes(np.asarray(grid[:L])), ax=ax_notes, title=title or None)
    ax_notes.set(xlabel="", xlim=(0, L / symbolic.STEPS_PER_QUARTER))
    quarters = L / symbolic.STEPS_PER_QUARTER
    ax.imshow(weights, cmap="magma_r", norm=PowerNorm(0.4, vmin=0, vmax=max(weights.max(), 1e-6)),
              extent=(0, quarters, quarters, 0), interpolation="nearest")
    for bar in np.arange(0, quarters, 4):
        ax.axvline(bar, color="0.8", linewidth=0.4)
        ax.axhline(bar, color="0.8", linewidth=0.4)
    ax.set(xlabel="key: the token looked at (quarter notes)", ylabel="query: predicting the token at (quarter notes)",
           title=f"layer {layer}, head {head}")
    return fig


def attention_explorer(model, tunes):
    """Pick a held-out tune, a layer and a head: its attention map (the maps of a tune are computed
    once, on first pick, so that moving the layer or head only redraws).

    Chapter: notebooks/05_transformer.ipynb
    """
    import ipywidgets as w
    from IPython.display import display

    titles = {f"{t.title[:40]} ({t.region})": t for t in tunes}
    tune = w.Dropdown(options=list(titles), description="tune")
    layer = w.IntSlider(value=0, min=0, max=model.config.n_layers - 1, description="layer")
    head = w.IntSlider(value=0, min=0, max=model.config.n_heads - 1, description="head")
    out, computed = w.Output(), {}

    def redraw(*_):
        if tune.value not in computed:
            computed[tune.value] = tune_attention(model, titles[tune.value])
        with out:
            out.clear_output(wait=True)
            fig = attention_figure(computed[tune.value], titles[tune.value].grid, layer.value, head.value, tune.value)
            display(fig)
            plt.close(fig)

    for control in (tune, layer, head):
        control.observe(redraw, "value")
    redraw()
    return w.VBox([w.HBox([tune, layer, head]), out])


def attention_gallery_items(maps: np.ndarray, grid, heads, title: str) -> list[dict]:
    """Pre-rendered maps of the (layer, head) pairs in ``heads`` for `widgets.gallery`.

    Chapter: notebooks/05_transformer.ipynb
    """
    items = []
    for layer, head in heads:
        fig = attention_figure(maps, grid, layer, head, title)
        items.append({"title": f"layer {layer}, head {head}", "image": plot.figure_to_png_base64(fig)})
    return items


def continuation_view(model, tune, temperature: float = 1.0, top_p: float | None = None, seed: int = 0,
                      prime_bars: int = 4, n_bars: int = 8, program: int = 73, qpm: int = 110):
    """The first ``prime_bars`` of ``tune`` (a `datasets.Tune`, or a grid with no labels) continued
    by ``model`` for ``n_bars``: returns ``(figure, y)``, the notes with the prime marked, and audio.

    Chapter: notebooks/05_transformer.ipynb
    """
    from .. import audio

    grid = np.asarray(getattr(tune, "grid", tune))
    prime = grid[:16 * prime_bars].astype(np.int64)
    new = model.generate(16 * n_bars, prime=prime, region=getattr(tune, "region", None),
                         tune_type=getattr(tune, "tune_type", None), temperature=temperature, top_p=top_p,
                         generator=torch.Generator().manual_seed(seed))
    notes = symbolic.grid_to_notes(np.concatenate([prime, new]))
    fig, ax = plt.subplots(figsize=(8, 2.2), layout="constrained")
    plot.plot_notes(notes, ax=ax, title=f"tau {temperature}, top-p {top_p or 'off'}")
    ax.axvline(len(prime) / symbolic.STEPS_PER_QUARTER, color="k", linestyle="--")
    return fig, audio.render_notes(notes, program=program, qpm=qpm)


def prime_from_upload(item: dict, upload_dir) -> np.ndarray:
    """The event grid of an uploaded ABC or MIDI melody (an ipywidgets ``FileUpload`` item), by
    `models.rnn.melody_to_prime`; a MIDI file is written to ``upload_dir`` first.

    Chapter: notebooks/05_transformer.ipynb
    """
    from ..models import rnn

    suffix = item["name"].rsplit(".", 1)[-1].lower()
    if suffix == "abc":
        return rnn.melody_to_prime(bytes(item["content"]).decode("utf-8"))
    path = Path(upload_dir) / f"upload.{suffix}"
    path.write_bytes(bytes(item["content"]))
    return rnn.melody_to_prime(path)


def continuation_explorer(model, tunes, upload_dir):
    """Prime with a held-out tune or a melody file you upload (`prime_from_upload`, into
    ``upload_dir``), choose temperature and top-p, hear the continuation; "regenerate" draws a new
    sample.

    Chapter: notebooks/05_transformer.ipynb
    """
    import ipywidgets as w
    from IPython.display import display

    from .. import audio

    titles = {f"{t.title[:40]} ({t.region})": t for t in tunes}
    tune = w.Dropdown(options=list(titles), description="prime")
    temperature = w.FloatSlider(value=1.0, min=0.3, max=1.8, step=0.1, description="temperature")
    top_p = w.FloatSlider(value=1.0, min=0.5, max=1.0, step=0.05, description="top-p (1 off)")
    upload = w.FileUpload(accept=".mid,.midi,.abc", description="your tune")
    again = w.Button(description="regenerate")
    out, seed = w.Output(), [0]

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            primed = titles[tune.value]
            if upload.value:
                item = upload.value[0] if isinstance(upload.value, tuple) else next(iter(upload.value.values()))
                try:
                    primed = prime_from_upload(item, upload_dir)
                except Exception as error:  # a bad file is reported, the explorer keeps working
                    print(f"cannot use {item['name']}: {error}")
                    return
            fig, y = continuation_view(model, primed, temperature.value, top_p.value if top_p.value < 1 else None, seed[0])
            display(fig)
            plt.close(fig)
            display(audio.player(y, audio.DEFAULT_SR))

    def regenerate(_):
        seed[0] += 1
        redraw()

    for control in (tune, temperature, top_p, upload):
        control.observe(redraw, "value")
    again.on_click(regenerate)
    redraw()
    return w.VBox([w.HBox([tune, temperature, top_p]), w.HBox([upload, again]), out])
