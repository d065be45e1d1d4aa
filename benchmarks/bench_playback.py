"""What the chapters play: generated and transferred spectrograms through the vocoder and Griffin-Lim.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_playback.py [--wav-dir DIR]

Every chapter that plays a spectrogram goes back to sound through `models.vocoder.to_audio`; this
scores its two methods, the vocoder and Griffin-Lim after the mel's pseudo-inverse (32 iterations;
16 for the timbre VAE, as its widget had), on what the chapters play:

- GAN and diffusion notes (chapters 3 and 7, shipped weights): 6 instruments x C4, G4, D5, latent
  seeds 100-117; pYIN pitch within 50 cents of the asked pitch and the median |error| in cents
  (`metrics.pitch_errors_cents`), next to the real notes of the same conditions (render seed 5)
  sent through the same mels, which also have a reference: the log-spectral distance
  (`recipes.synthesis.spectral_lsd_db`, linear STFT at the mel's settings, floor -80 dB) to the
  original audio;
- CycleGAN transfers (chapter 9): the first 8 test tunes (opening 16 quarters), flute -> clarinet,
  log-spectral distance of the played translation to the true clarinet rendering, next to the true
  clarinet's own log-mel played back;
- timbre-VAE reconstructions (chapters 6 and 8, 64 mel bands): 6 instruments x 4 pitches at
  velocity 90, posterior mean decoded, distance to the original note and pitch.

With ``--wav-dir`` a few clips of each kind are written there as WAV files to listen to.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from musiclab import audio, datasets, metrics, recipes
from musiclab.models import cyclegan, diffusion, gan, vae

SR = audio.DEFAULT_SR
METHODS = ("vocoder", "pseudo-inverse")


def pitch_scores(ys, pitches) -> dict:
    errors = metrics.pitch_errors_cents(np.stack(ys), pitches, SR)
    return {"pitch within 50 cents": metrics.pitch_accuracy(errors),
            "median |error| (cents)": float(np.nanmedian(np.abs(errors)))}


def mean_lsd(ys, references) -> float:
    return float(np.mean([recipes.synthesis.spectral_lsd_db(y, r) for y, r in zip(ys, references)]))


def notes(wav_dir) -> dict:
    generator, _ = gan.load_pretrained()
    model, _ = diffusion.load_pretrained()
    cfg = generator.config
    real = gan.render_note_variations(cfg, 1, seed=5, pitches=[60, 67, 74])
    programs, pitches = real["program"], real["pitch"]
    seeds = np.arange(len(programs)) + 100
    sets = {"real notes": real["log_mel"],
            "GAN notes": gan.generate_log_mel(generator, programs, pitches, gan.latent(seeds, cfg.z_dim)),
            "diffusion notes": gan.generate_log_mel(model, programs, pitches, gan.latent(seeds, model.config.z_dim))}
    rows = {"real notes, original audio": pitch_scores(list(real["y"]), pitches)}
    for kind, log_mels in sets.items():
        for method in METHODS:
            ys = [gan.log_mel_to_audio(m, cfg, method=method) for m in log_mels]
            rows[f"{kind} / {method}"] = pitch_scores(ys, pitches)
            if kind == "real notes":
                rows[f"{kind} / {method}"]["LSD to the original (dB)"] = mean_lsd(ys, real["y"])
            write(wav_dir, f"{kind.split()[0]}_{method}", [ys[i] for i in (1, 9, 16)])
    return rows


def transfers(wav_dir) -> dict:
    model, _ = cyclegan.load_pretrained("cyclegan-timbre")
    program_a, program_b = int(model.config.domain_a), int(model.config.domain_b)
    tunes = datasets.load_folk("test")[:8]
    truth = [audio.render_notes([n for n in t.notes if n.start < 16], program=program_b, qpm=cyclegan.TIMBRE_QPM, sr=SR)
             for t in tunes]
    translated = [cyclegan.translate_log_mel(model, cyclegan.melody_log_mel(t.notes, program_a, 16), "a_to_b")
                  for t in tunes]
    own = [cyclegan.melody_log_mel(t.notes, program_b, 16) for t in tunes]
    rows = {}
    for method in METHODS:
        ys = [cyclegan.log_mel_to_audio(x, method=method) for x in translated]
        rows[f"CycleGAN flute -> clarinet / {method}"] = {
            "LSD to the true clarinet (dB)": mean_lsd(ys, truth),
            "true clarinet's log-mel played back: LSD (dB)": mean_lsd([cyclegan.log_mel_to_audio(x, method=method)
                                                                      for x in own], truth)}
        write(wav_dir, f"cyclegan_{method}", ys[:2])
    return rows


def timbre(wav_dir) -> dict:
    model, _ = vae.load_pretrained("vae-timbre")
    tc = model.config
    data = vae.timbre_note_set(tc, programs=(0, 24, 40, 56, 71, 73), pitches=(55, 62, 67, 72), velocities=(90,))
    with torch.no_grad():
        reconstructions = model.decode(model.encode(torch.from_numpy(data["x"]))[0]).numpy()
    rows = {}
    for kind, xs in (("timbre VAE reconstructions", reconstructions), ("timbre VAE input (64 bands)", data["x"])):
        for method in METHODS:
            ys = [vae.timbre_to_audio(x, tc, method=method) for x in xs]
            rows[f"{kind} / {method}"] = {**pitch_scores(ys, data["pitch"]),
                                          "LSD to the original (dB)": mean_lsd(ys, data["y"])}
            if kind.endswith("reconstructions"):
                write(wav_dir, f"vae_{method}", [ys[i] for i in (2, 9, 21)])
    return rows


def write(wav_dir, name: str, clips) -> None:
    if wav_dir:
        for i, y in enumerate(clips):
            audio.save_audio(Path(wav_dir) / f"{name}_{i}.wav", y / max(1e-6, float(np.abs(y).max())) * 0.9, SR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wav-dir", help="write a few clips of each kind here")
    args = parser.parse_args()
    if args.wav_dir:
        Path(args.wav_dir).mkdir(parents=True, exist_ok=True)
    for part in (notes, transfers, timbre):
        for name, row in part(args.wav_dir).items():
            print(f"{name:58s} " + ", ".join(f"{k} {v:.3f}" if "within" in k else f"{k} {v:.2f}" for k, v in row.items()),
                  flush=True)


if __name__ == "__main__":
    main()
