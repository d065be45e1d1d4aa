"""Chapter 8 figures: style transfer with the melody VAE's attribute vectors, timbre morphs, widget time.

    MUSICLAB_MODE=full OMP_NUM_THREADS=1 python benchmarks/bench_style.py [--classifier PATH]

Everything is measured on held-out data with the shipped melody and timbre VAEs (chapter 6) and the
shipped style classifier (chapter 11, or ``--classifier``):

- the classifier's region accuracy on held-out 2-bar (32-step) and 4-bar (64-step) windows, over
  all regions and between Chinese and Irish;
- region transfer Chinese <-> Irish: attribute vector (centroid difference, train split) swept over
  alpha, operating point picked on the validation split, reported on the test split; strength three
  ways (7-way on each 2-bar phrase, 7-way on 4 bars, two-domain on 4 bars) with onset and contour
  agreement; the unchanged source and a random target-style stretch as baselines; interpolation
  towards the target centroid;
- mode (major -> minor, phrases transposed to C) and note density: the attribute's own measure
  (minor-third share, notes per phrase) and content preservation over alpha;
- timbre morphs between every pair of the 8 instruments at every held-out pitch: share of morphs
  whose progress towards the real target rendering rises at every step;
- one widget interaction (encode, move, decode, classify, piano rolls, rendering and embedding the
  audio), median of 20, for a new tune and for a strength move.
"""
from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from musiclab import audio, config, datasets, plot, recipes, style, symbolic  # noqa: E402
from musiclab.models import mtnn, vae  # noqa: E402

PAIRS = (("Chinese", "Irish"), ("Irish", "Chinese"))
VECTOR_ALPHAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
CENTROID_ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]
N_EVAL, N_TRAIN = 1000, 4000


def windows_of(splits, split, region, n_bars, max_windows=N_EVAL, seed=0):
    parts = [symbolic.slice_grid(t.grid, n_bars, hop_bars=1 if n_bars == 2 else n_bars)
             for t in splits[split] if t.region == region]
    windows = np.concatenate(parts)
    keep = np.random.default_rng(seed).permutation(len(windows))[:max_windows]
    return windows[np.sort(keep)]


def judge(grids, target, source, classifier):
    return {"7-way 2 bars": style.transfer_strength(style.split_phrases(grids), target, classifier),
            "7-way 4 bars": style.transfer_strength(grids, target, classifier),
            "two-domain 4 bars": style.transfer_strength(grids, target, classifier, versus=source)}


def classifier_accuracy(splits, classifier):
    names = list(classifier.labels["region"])
    for n_bars in (2, 4):
        correct = total = pair_correct = pair_total = 0
        own = {}
        for region in datasets.REGIONS:
            grids = windows_of(splits, "test", region, n_bars, max_windows=None)
            p = classifier.predict_proba(grids)["region"]
            row = names.index(region)
            correct, total = correct + int((p.argmax(1) == row).sum()), total + len(grids)
            own[region] = p[:, row].mean()
            if region in ("Chinese", "Irish"):
                other = names.index("Irish" if region == "Chinese" else "Chinese")
                pair_correct, pair_total = pair_correct + int((p[:, row] > p[:, other]).sum()), pair_total + len(grids)
        print(f"classifier, {n_bars}-bar test windows: 7-way accuracy {correct / total:.3f} ({total}), Chinese vs Irish "
              f"{pair_correct / pair_total:.3f} ({pair_total}); mean P(true region) "
              + ", ".join(f"{r} {p:.2f}" for r, p in own.items()))


def region_transfer(splits, melody, classifier):
    centroids = {r: style.latent_means(melody, windows_of(splits, "train", r, 2, N_TRAIN)).mean(0)
                 for r in ("Chinese", "Irish")}
    rng = np.random.default_rng(0)
    for source, target in PAIRS:
        vector = centroids[target] - centroids[source]
        valid = style.transfer_curve(melody, windows_of(splits, "valid", source, 4), VECTOR_ALPHAS, vector=vector,
                                     target=target, classifier=classifier, versus=source)
        alpha = style.pick_operating_point(valid)["alpha"]
        test, pool = windows_of(splits, "test", source, 4), windows_of(splits, "test", target, 4)
        random_target = pool[rng.integers(len(pool), size=len(test))]
        print(f"\n{source} -> {target}: {len(test)} held-out 4-bar stretches; operating point alpha {alpha:g} (validation)")
        print("| setting | 7-way 2 bars | 7-way 4 bars | two-domain 4 bars | onset | contour |")
        print("| --- | --- | --- | --- | --- | --- |")
        rows = [("unchanged source", {**judge(test, target, source, classifier), "onset_agreement": 1.0,
                                      "contour_agreement": 1.0}),
                ("random target stretch", {**judge(random_target, target, source, classifier),
                                           **style.content_preservation(test, random_target)})]
        for key, alphas, kwargs in (("vector", VECTOR_ALPHAS, {"vector": vector}),
                                    ("centroid", CENTROID_ALPHAS, {"centroid": centroids[target]})):
            for r in style.transfer_curve(melody, test, alphas, **kwargs):
                mark = " (operating point)" if key == "vector" and r["alpha"] == alpha else ""
                rows.append((f"{key} alpha {r['alpha']:g}{mark}", {**judge(r["grids"], target, source, classifier), **r}))
        for name, r in rows:
            print(f"| {name} | {r['7-way 2 bars']:.3f} | {r['7-way 4 bars']:.3f} | {r['two-domain 4 bars']:.3f} "
                  f"| {r['onset_agreement']:.3f} | {r['contour_agreement']:.3f} |")


def phrases_in_c(splits, split, max_slices, seed=0):
    grids = {"major": [], "minor": []}
    for tune in splits[split]:
        if tune.region == "Chinese" or tune.mode not in grids:
            continue
        shift = (-symbolic.pitch_class_of(tune.key) + 6) % 12 - 6
        for window in symbolic.slice_grid(tune.grid, 2):
            span = symbolic.grid_pitch_range(window)
            if span and symbolic.PITCH_LOW <= span[0] + shift and span[1] + shift <= symbolic.PITCH_HIGH:
                grids[tune.mode].append(symbolic.transpose_grid(window, shift))
    rng = np.random.default_rng(seed)
    return {m: np.stack(g)[np.sort(rng.permutation(len(g))[:max_slices])] for m, g in grids.items()}


def minor_third_share(grids):
    pitch_classes = (grids[grids >= 2] + symbolic.PITCH_LOW - 2) % 12
    thirds = pitch_classes[np.isin(pitch_classes, (3, 4))]
    return float((thirds == 3).mean()) if thirds.size else float("nan")


def mode_and_density(splits, melody, classifier):
    train, test = phrases_in_c(splits, "train", N_TRAIN), phrases_in_c(splits, "test", N_EVAL)
    to_minor = style.attribute_vector(melody, train["minor"], train["major"])
    print(f"\nmode, {len(test['major'])} held-out major phrases in C (real minor: minor-third share "
          f"{minor_third_share(test['minor']):.2f}, P(minor) {style.transfer_strength(test['minor'], 'minor', classifier, task='mode'):.2f})")
    print("| alpha | minor-third share | P(minor) | onset | contour |")
    print("| --- | --- | --- | --- | --- |")
    for r in style.transfer_curve(melody, test["major"], [0.0, 0.5, 1.0, 1.5, 2.0, 3.0], vector=to_minor,
                                  target="minor", classifier=classifier, task="mode"):
        print(f"| {r['alpha']:g} | {minor_third_share(r['grids']):.2f} | {r['strength']:.2f} | {r['onset_agreement']:.2f} "
              f"| {r['contour_agreement']:.2f} |")
    pool = np.concatenate([train["major"], train["minor"]])
    count = (pool >= 2).sum(1)
    low, high = np.quantile(count, [0.25, 0.75])
    to_dense = style.attribute_vector(melody, pool[count >= high], pool[count <= low])
    sources = np.concatenate([test["major"], test["minor"]])
    print(f"\nnote density ({len(sources)} held-out phrases, {(sources >= 2).sum(1).mean():.1f} notes on average)")
    print("| alpha | notes per 2 bars | onset | contour |")
    print("| --- | --- | --- | --- |")
    for r in style.transfer_curve(melody, sources, [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], vector=to_dense):
        print(f"| {r['alpha']:g} | {(r['grids'] >= 2).sum(1).mean():.1f} | {r['onset_agreement']:.2f} "
              f"| {r['contour_agreement']:.2f} |")


def timbre_morphs():
    timbre, _ = vae.load_pretrained("vae-timbre")
    notes = vae.timbre_note_set(timbre.config, velocities=(90,))
    held_out = recipes.vae.timbre_split(notes)
    with torch.no_grad():
        mu = timbre.encode(torch.from_numpy(notes["x"]))[0]
    progress = []
    for i, a in enumerate(vae.TIMBRE_PROGRAMS):
        for b in vae.TIMBRE_PROGRAMS[i + 1:]:
            for pitch in np.unique(notes["pitch"][held_out]):
                ia = int(np.flatnonzero((notes["program"] == a) & (notes["pitch"] == pitch))[0])
                ib = int(np.flatnonzero((notes["program"] == b) & (notes["pitch"] == pitch))[0])
                with torch.no_grad():
                    path = timbre.decode(vae.interpolate(mu[ia], mu[ib], 9, spherical=False)).numpy()
                progress.append(style.morph_progress(path, notes["x"][ia], notes["x"][ib]))
    progress = np.array(progress)
    print(f"\ntimbre morphs: {len(progress)} (28 pairs x held-out pitches, velocity 90): progress rises at every step in "
          f"{np.mean(np.all(np.diff(progress, axis=1) > 0, axis=1)):.1%}; mean progress {progress[:, 0].mean():.2f} -> "
          f"{progress[:, -1].mean():.2f}")


def widget_interactions_ms(splits, melody, classifier, repeats: int = 20) -> dict:
    """Median time of one interaction of chapter 8's widget, as the notebook does it: a new tune
    (both players made) and a strength move (the source's player reused)."""
    centroids = {r: style.latent_means(melody, windows_of(splits, "train", r, 2, 500)).mean(0) for r in ("Chinese", "Irish")}
    phrases = windows_of(splits, "test", "Chinese", 2, 50)

    def interaction(phrase, alpha, new_tune):
        after = style.decode_moved(melody, style.latent_means(melody, phrase[None]),
                                   centroids["Irish"] - centroids["Chinese"], alpha)[0]
        pair = np.stack([phrase, after])
        style.target_probabilities(pair, "Irish", classifier)
        style.target_probabilities(pair, "Irish", classifier, versus="Chinese")
        style.onset_agreement(phrase, after), style.contour_agreement(phrase, after)
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.3), sharey=True)
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.22, top=0.78, wspace=0.05)
        for ax, grid in zip(axes, pair):
            plot.plot_notes(symbolic.grid_to_notes(grid), ax=ax)
        fig.canvas.draw()
        plt.close(fig)
        for grid in pair if new_tune else pair[1:]:
            audio.player(audio.render_notes(symbolic.grid_to_notes(grid), program=73), audio.DEFAULT_SR)

    times = {"new tune": [], "strength move": []}
    for i in range(repeats):
        for kind, phrase, alpha in (("new tune", phrases[i], 1.5), ("strength move", phrases[0], 1.0 + i / 8)):
            start = time.perf_counter()
            interaction(phrase, alpha, kind == "new tune")
            times[kind].append(time.perf_counter() - start)
    return {kind: 1000 * float(np.median(t)) for kind, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classifier", help="style classifier weights (default: the shipped ones)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    melody, _ = vae.load_pretrained("vae-melody")
    classifier = mtnn.load_pretrained("mtnn", args.classifier)
    splits = {split: datasets.load_folk(split) for split in ("train", "valid", "test")}
    print(f"mode {config.get_mode()}")
    classifier_accuracy(splits, classifier)
    region_transfer(splits, melody, classifier)
    mode_and_density(splits, melody, classifier)
    timbre_morphs()
    print("\none widget interaction (median of 20): " + ", ".join(
        f"{kind} {ms:.0f} ms" for kind, ms in widget_interactions_ms(splits, melody, classifier).items()))
    print(f"bench wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
