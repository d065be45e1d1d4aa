"""Chapter 9 figures: the shipped CycleGANs measured on held-out tunes, and widget interaction times.

    MUSICLAB_MODE=full OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cyclegan.py

- timbre: log-spectral distance (dB) of G(flute) to the true clarinet rendering against the
  untransformed input, on 40 test tunes spread over the test split (opening 16 quarter notes), both
  directions; the hidden-information test (cycle error against F applied to the true rendering);
- symbolic: transfer strength (shipped region classifier) and content preservation on the test
  split's 4-bar phrases, at strengths s = 0 ... 2, both directions; the operating point is picked on
  the validation phrases (`style.pick_operating_point`);
- one widget interaction (translation + figure + audio), median of 5 wall and CPU times, as the
  notebook's explorer does it.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from musiclab import audio, datasets, plot, recipes, style, symbolic
from musiclab.models import cyclegan, mtnn
from timing import repeat_timed  # benchmarks/timing.py


def main() -> None:
    torch.set_num_threads(1)
    timbre, timbre_sidecar = cyclegan.load_pretrained("cyclegan-timbre")
    programs = (int(timbre.config.domain_a), int(timbre.config.domain_b))
    test_tunes = datasets.load_folk("test")
    tunes = test_tunes[::max(1, len(test_tunes) // 40)][:40]
    pairs = recipes.cyclegan.timbre_pairs(tunes, programs)
    scores = recipes.cyclegan.score_timbre_transfer(timbre, pairs)
    print(f"timbre ({timbre_sidecar['command']}), {len(pairs)} test tunes: LSD input {scores['lsd_input']:.2f} dB, "
          f"G(a) {scores['lsd_translated_a_to_b']:.2f} dB (ratio {scores['ratio_a_to_b']:.3f}), "
          f"F(b) {scores['lsd_translated_b_to_a']:.2f} dB")

    rows = []
    with torch.no_grad():
        for x_a, x_b in pairs:
            a = torch.from_numpy(cyclegan.encode_log_mel(x_a))[None]
            b = torch.from_numpy(cyclegan.encode_log_mel(x_b))[None]
            g_a = timbre.a_to_b(a).clamp(-1, 1)
            noisy = g_a + 0.02 * torch.randn(g_a.shape, generator=torch.Generator().manual_seed(0))
            rows.append([(timbre.b_to_a(g_a).clamp(-1, 1) - a).abs().mean().item(),
                         (timbre.b_to_a(b).clamp(-1, 1) - a).abs().mean().item(),
                         (timbre.b_to_a(noisy).clamp(-1, 1) - a).abs().mean().item()])
    cycle, honest, noisy = np.mean(rows, axis=0)
    print(f"hidden information: |F(G(a)) - a| {cycle:.4f}, |F(b*) - a| {honest:.4f} (ratio {cycle / honest:.2f}), "
          f"with 1% noise on G(a) {noisy:.4f} (model units, [-1, 1] = 80 dB)")

    model, sidecar = cyclegan.load_pretrained("cyclegan-symbolic")
    classifier = mtnn.load_pretrained()
    region_a, region_b = model.config.domain_a, model.config.domain_b
    phrases = {region: recipes.cyclegan.region_phrases(test_tunes, region, hop_bars=recipes.cyclegan.PHRASE_BARS)
               for region in (region_a, region_b)}
    print(f"\nsymbolic ({sidecar['command']}), test phrases {region_a} {len(phrases[region_a])}, "
          f"{region_b} {len(phrases[region_b])}")
    valid_tunes = datasets.load_folk("valid", regions=(region_a, region_b))
    strengths = (0.0, 0.5, 1.0, 1.25, 1.5, 2.0)
    for direction, source, target in (("a_to_b", region_a, region_b), ("b_to_a", region_b, region_a)):
        valid = recipes.cyclegan.region_phrases(valid_tunes, source, hop_bars=recipes.cyclegan.PHRASE_BARS)
        picked = style.pick_operating_point(recipes.cyclegan.symbolic_strength_curve(model, valid, direction, strengths,
                                                                                     classifier))
        for r in recipes.cyclegan.symbolic_strength_curve(model, phrases[source], direction, strengths, classifier):
            mark = "  <- picked on validation" if r["alpha"] == picked["alpha"] else ""
            print(f"  {source} -> {target}, s = {r['alpha']:.2f}: strength two-domain {r['strength']:.3f}, "
                  f"7-way {r['strength_7way']:.3f}, onsets "
                  f"{r['onset_agreement']:.3f}, contour {r['contour_agreement']:.3f}, steps changed "
                  f"{r['changed_steps']:.3f}{mark}")

    notes = [t for t in test_tunes if t.region in (region_a, region_b)][1].notes
    notes = [n._replace(start=n.start - notes[0].start) for n in notes]

    def timbre_interaction():
        x = cyclegan.melody_log_mel(notes, programs[0], 8)
        truth = cyclegan.melody_log_mel(notes, programs[1], 8)
        y = cyclegan.translate_log_mel(timbre, x, "a_to_b", 0.75)
        audio.log_spectral_distance_db(y, truth, cyclegan.FLOOR_DB)
        fig, axes = plt.subplots(1, 2, figsize=(7.4, 2.2))
        for ax, spec in zip(axes, (x, y)):
            ax.imshow(np.maximum(spec, cyclegan.FLOOR_DB / 20 * math.log(10)), origin="lower", aspect="auto")
        fig.canvas.draw()
        plt.close(fig)
        cyclegan.log_mel_to_audio(y)

    grid = np.pad(symbolic.notes_to_grid(notes)[:64], (0, max(0, 64 - len(symbolic.notes_to_grid(notes)))))

    def melody_interaction():
        moved = cyclegan.translate_grids(model, grid[None], "a_to_b", 1.5)[0]
        style.content_preservation(grid[None], moved[None])
        style.transfer_strength(grid[None], region_b, classifier)
        style.transfer_strength(moved[None], region_b, classifier)
        fig, axes = plt.subplots(1, 2, figsize=(7.6, 2.3))
        for ax, g in zip(axes, (grid, moved)):
            plot.plot_notes(symbolic.grid_to_notes(g), ax=ax)
        fig.canvas.draw()
        plt.close(fig)
        audio.render_notes(symbolic.grid_to_notes(moved), program=0)

    for name, action in (("timbre", timbre_interaction), ("melody", melody_interaction)):
        wall, cpu = (float(np.median(ms)) for ms in repeat_timed(lambda _: action(), 5))
        print(f"one {name} interaction: wall {wall:.0f} ms, CPU {cpu:.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
