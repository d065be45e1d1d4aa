"""Neural audio synthesis figures: three ways back from a log-mel to sound, and DDSP timbre transfer.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_synthesis.py [--vocoder PATH] [--ddsp PATH] [--part inverters|transfer]

- inverters, on held-out real renderings at the book's log-mel settings (16 kHz, n_fft 1024, hop 256,
  80 mel bands): two test tunes per instrument of the GAN's six (opening 16 quarter notes) and
  one-shot notes (`models.gan.render_note_variations`, seed 1: velocity, hold and onset drawn afresh),
  each turned into its log-mel and back by Griffin-Lim after the mel's non-negative least-squares
  inverse (``audio.mel_to_audio``, ``inverse="nnls"``, 32 iterations), Griffin-Lim after the mel's
  pseudo-inverse (``inverse="pinv"``, the widgets' path) and the vocoder. Scores against the original:
  log-spectral distance (`recipes.synthesis.spectral_lsd_db`: linear STFT at the mel's own n_fft and
  hop, floor -80 dB), the multi-resolution STFT distance (`losses.multiscale_spectral_loss`, windows
  2048 ... 64), pYIN pitch accuracy on the notes (share of the original's voiced frames where the
  inverted note is voiced and within 50 cents of the note's pitch) and voicing agreement, and the
  real-time factor on one CPU thread (seconds of audio per second of computing, mel to audio);
- DDSP timbre transfer: the flute renderings' f0 and notes (from the score, and from the audio: pYIN and
  `audio.detect_note_spans`) through a decoder (the clarinet's by default), with the decoder's own
  articulation of the notes and with the flute's loudness curve; log-spectral distance (log-mel, floor
  -80 dB) to the true rendering on the CycleGAN's 40 test tunes (opening 16 quarters), next to the
  shipped CycleGAN's figure from its sidecar (flute -> clarinet) and the identity baseline.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from musiclab import audio, datasets, losses, recipes, weights
from musiclab.models import ddsp, gan, vocoder

SR = audio.DEFAULT_SR


def inverters(model) -> dict:
    c = model.config

    def griffin_lim(inverse):
        return lambda x: audio.mel_to_audio(x, c.sr, c.n_fft, c.hop_length, c.fmin, c.fmax, inverse=inverse)

    return {"Griffin-Lim (NNLS mel inverse)": griffin_lim("nnls"), "Griffin-Lim (pseudo-inverse)": griffin_lim("pinv"),
            "vocoder": lambda x: vocoder.log_mel_to_audio(model, x)}


def pitch_scores(y_inverted, y_original, pitch: int) -> tuple[float, float]:
    """(pitch accuracy, voicing agreement) of pYIN on the inverted note against the original's voiced frames."""
    import librosa

    def track(y):
        f0, voiced, _ = librosa.pyin(y, fmin=65.0, fmax=2100.0, sr=SR, frame_length=1024, hop_length=256)
        return f0, voiced

    f0, voiced = track(y_inverted)
    _, reference = track(y_original)
    n = min(len(voiced), len(reference))
    f0, voiced, reference = f0[:n], voiced[:n], reference[:n]
    cents = 1200 * np.abs(np.log2(np.where(voiced, f0, 1.0) / librosa.midi_to_hz(pitch)))
    accurate = voiced & (cents < 50)
    return float(accurate[reference].mean()) if reference.any() else float("nan"), float((voiced == reference).mean())


def bench_inverters(model, note_stride: int) -> None:
    c = model.config
    programs = (0, 19, 24, 40, 71, 73)
    tunes = recipes.cyclegan._spread(datasets.load_folk("test"), 2 * len(programs))
    melodies = [y for i, program in enumerate(programs)
                for y, _ in recipes.synthesis.render_melodies(tunes[i::len(programs)], program, 16, SR)]
    pitches = gan.PITCHES[::note_stride]
    notes = gan.render_note_variations(gan.GanConfig(), 1, seed=1, programs=programs, pitches=pitches)
    print(f"held out: {len(melodies)} test-tune melodies ({sum(len(y) for y in melodies) / SR:.0f} s) and "
          f"{len(notes['y'])} one-shot notes (programs {list(programs)}, pitches {list(pitches)})")
    print("| inverter | LSD melodies (dB) | LSD notes (dB) | MR-STFT melodies | MR-STFT notes | "
          "pitch accuracy | voicing agreement | real time on 1 thread |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, invert in inverters(model).items():
        rows, seconds, audio_s = {"melodies": [], "notes": []}, 0.0, 0.0
        pitch_rows = []
        for kind, clips in (("melodies", melodies), ("notes", list(notes["y"]))):
            for i, y in enumerate(clips):
                x = vocoder.log_mel(y, c)
                start = time.perf_counter()
                y_hat = invert(x)
                seconds += time.perf_counter() - start
                audio_s += len(y_hat) / SR
                y_ref = y[:len(y_hat)]
                rows[kind].append((recipes.synthesis.spectral_lsd_db(y_hat, y_ref),
                                   float(losses.multiscale_spectral_loss(torch.from_numpy(y_hat[None]),
                                                                         torch.from_numpy(y_ref[None])))))
                if kind == "notes":
                    pitch_rows.append(pitch_scores(y_hat, y_ref, int(notes["pitch"][i])))
        lsd = {k: np.mean(v, axis=0) for k, v in rows.items()}
        accuracy, voicing = np.nanmean(pitch_rows, axis=0)
        print(f"| {name} | {lsd['melodies'][0]:.2f} | {lsd['notes'][0]:.2f} | {lsd['melodies'][1]:.2f} | "
              f"{lsd['notes'][1]:.2f} | {accuracy:.3f} | {voicing:.3f} | {audio_s / seconds:.0f}x |")


def bench_transfer(decoder, program: int, n_tunes: int) -> None:
    tunes = recipes.cyclegan._spread(datasets.load_folk("test"), n_tunes)
    cyclegan_metrics = json.loads((weights.CHECKPOINTS / "cyclegan-timbre.json").read_text())["metrics"]
    name = decoder.config.instrument
    print(f"timbre transfer flute -> {name}, {len(tunes)} test tunes (opening 16 quarters):")
    print(f"| method | LSD to the true {name} rendering (dB) |")
    print("| --- | --- |")
    for f0, source in (("score", "the score"), ("pyin", "the flute audio (pYIN, notes found by loudness and pitch)")):
        start = time.perf_counter()
        scores = recipes.synthesis.score_timbre_transfer(decoder, tunes, program, f0=f0)
        seconds = time.perf_counter() - start
        print(f"| DDSP {name} decoder, f0 and notes from {source}, the {name}'s articulation | "
              f"{scores['lsd_transfer']:.2f} ({seconds:.0f} s for all tunes, both rows) |")
        print(f"| DDSP {name} decoder, f0 and notes from {source}, the flute's loudness | "
              f"{scores['lsd_transfer_source_dynamics']:.2f} |")
    if program == 71:
        print(f"| CycleGAN flute -> clarinet (shipped sidecar) | {cyclegan_metrics['test_lsd_translated_a_to_b']:.2f} |")
    print(f"| identity: the flute itself (here / CycleGAN sidecar) | {scores['lsd_input']:.2f} / "
          f"{cyclegan_metrics['test_lsd_input']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocoder", help="vocoder weights (default: the shipped ones)")
    parser.add_argument("--ddsp", help="decoder weights (default: the shipped decoder of --program)")
    parser.add_argument("--program", type=int, default=71, help="the decoder's instrument (default 71, clarinet)")
    parser.add_argument("--note-stride", type=int, default=4, help="every n-th of the GAN's pitches (default 4)")
    parser.add_argument("--tunes", type=int, default=40, help="test tunes for the transfer (default 40)")
    parser.add_argument("--part", choices=("inverters", "transfer", "all"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part in ("inverters", "all"):
        model, sidecar = vocoder.load_pretrained(path=args.vocoder)
        print(f"vocoder: {sidecar['command']} ({sidecar['mode']} mode, {sidecar['wall_time_s']:.0f} s on "
              f"{sidecar['device']}, {sum(p.numel() for p in model.parameters()):,} parameters)")
        bench_inverters(model, args.note_stride)
    if args.part in ("transfer", "all"):
        decoder, sidecar = ddsp.load_pretrained(f"ddsp-{ddsp.instrument_name(args.program)}", path=args.ddsp)
        print(f"DDSP: {sidecar['command']} ({sidecar['mode']} mode, {sidecar['wall_time_s']:.0f} s on "
              f"{sidecar['device']})")
        bench_transfer(decoder, args.program, args.tunes)


if __name__ == "__main__":
    main()
