"""Training recipes: one function per model the book trains, behind ``python -m musiclab train NAME``.

A recipe builds the data and the model at the size of the current mode, trains with `train.fit`
(resuming from ``out_dir/NAME.pt`` if a run was interrupted), evaluates on held-out data and writes
``out_dir/NAME.safetensors`` with a JSON sidecar recording the command, config, data, metrics,
device and wall time. Each chapter's recipes live in their own module; `RECIPES` maps the
command-line names to them.

Every recipe takes ``out_dir, steps, command, progress, restart`` and, as keywords, any field of its
settings dataclass (one per recipe, with a quick and a full preset: `common.pick_settings`), all
recorded in the sidecar. `RECIPES` maps each command-line name to a `Recipe`: the function, one
line on what it trains and what ``--data`` takes (the command line's ``--help`` lists them).

**Your own data** (``python -m musiclab train NAME --data PATH``): a recipe opts in by taking a
keyword ``data=None`` (`accepts_data` checks the signature; the command line refuses ``--data`` for the others). With a
folder of melody files it calls ``tunes, description, skipped = common.user_melodies(data)`` (MIDI,
ABC, MusicXML -> `datasets.Tune` by split); a recipe that learns labels (the classifiers, the
symbolic CycleGAN) takes them from the folder layout, one class per subfolder, with ``tunes,
classes, description, skipped = common.user_classes(data)`` (a tune's class is its ``region``);
with recordings ``segments, description, skipped =
common.user_audio(data, sr, segment_s)`` (WAV, FLAC, OGG, MP3 -> checked, peak-normalised segments
by split). All three print and skip unusable files and raise ``BadInputError`` when too little is left;
splits come from `datasets.split_ranked`. Put ``description`` (and ``skipped``) into the sidecar via
`common._finish`, keep the same `train.fit` call (checkpoints, progress, resuming), and size
batches with ``min(batch_size, n)`` so that a small folder still trains.

Under ``torchrun --nproc_per_node=N`` every recipe trains with DistributedDataParallel through
`train.fit` (nothing to do in a recipe; only the first process writes files).

Chapter: notebooks/02_learning_to_generate.ipynb
"""
import functools
import inspect
from typing import Callable, NamedTuple

from .common import CHECKPOINTS
from .cyclegan import (UnpairedBatches, cyclegan_step, region_phrases, score_symbolic_transfer, score_timbre_transfer,
                       symbolic_strength_curve, timbre_log_mels, timbre_pairs, train_cyclegan_symbolic,
                       train_cyclegan_timbre)
from .evaluation import (accuracy_vs_steps_read, crop_batches, crop_grids, mtnn_step, rnn_evaluator_step,
                         score_classifier, train_mtnn, train_rnn_evaluator)
from .gan import evaluate_gan, gan_batches, gan_step, score_gan_diversity, train_gan
from .next_token import next_token_step, score_next_token, train_next_token
from .recording import book_recording, recording_slices, train_recording_gan
from .rnn import (AUDIO_HELD_OUT_PITCHES, AUDIO_PROGRAM, AUDIO_SR, AUDIO_TRAIN_PITCHES, audio_notes, audio_step,
                  load_rnn, melody_generation_report, melody_step, poly_batches, poly_step, score_audio,
                  score_melody, score_pianoroll_file, train_audio, train_melody, train_poly)
from .vae import (melody_slices, score_timbre, timbre_split, train_vae_melody, train_vae_timbre, vae_melody_step,
                  vae_timbre_step)

MELODIES = "a folder of melodies: MIDI, ABC, MusicXML (monophonic)"
RECORDINGS = "a recording or a folder of them: WAV, FLAC, OGG, MP3 (any rate, at least 5 s)"
CLASSES = "a folder with one subfolder of melodies per class (PATH/<class>/*.mid)"


class Recipe(NamedTuple):
    """A model the command line trains: the recipe, one line on what it is, and what ``--data`` takes."""

    train: Callable[..., dict]
    about: str
    data: str


RECIPES = {
    "next-token": Recipe(train_next_token, "chapter 2: neural n-gram, the next token of a melody's event grid",
                         MELODIES),
    "gan": Recipe(train_gan, "chapter 3: conditional SpecGAN of instrument notes (log-mel)",
                  f"{RECORDINGS}; trains recording-gan"),
    "vae-melody": Recipe(train_vae_melody, "chapter 4: VAE of 2-bar melodies (latent space, interpolation)", MELODIES),
    "vae-timbre": Recipe(train_vae_timbre, "chapter 4: VAE of one-shot note log-mels (timbre space)", RECORDINGS),
    "melody-rnn": Recipe(train_melody, "chapter 5: LSTM language model of folk melodies, region and tune type",
                         MELODIES),
    "poly-rnn": Recipe(train_poly, "chapter 5: LSTM of piano rolls, independent notes per frame (chorales)",
                       "a folder of MIDI files, or of train.npz and valid.npz of (T, 88) 0/1 arrays"),
    "poly-made": Recipe(functools.partial(train_poly, output="made"),
                        "chapter 5: LSTM of piano rolls, notes of a frame modelled jointly (NADE/MADE)",
                        "a folder of MIDI files, or of train.npz and valid.npz of (T, 88) 0/1 arrays"),
    "audio-rnn": Recipe(train_audio, "chapter 5: sample-level RNN of 8 kHz audio, mu-law categorical output",
                        RECORDINGS),
    "audio-rnn-mse": Recipe(functools.partial(train_audio, output="gaussian"),
                            "chapter 5: the same with a Gaussian output trained by MSE", RECORDINGS),
    "recording-gan": Recipe(train_recording_gan, "chapter 11: single-condition SpecGAN of slices of one recording",
                            RECORDINGS),
    "cyclegan-timbre": Recipe(train_cyclegan_timbre, "chapter 7: CycleGAN flute <-> clarinet on log-mels",
                              f"{MELODIES}, rendered on both instruments"),
    "cyclegan-symbolic": Recipe(train_cyclegan_symbolic, "chapter 7: CycleGAN between two regions' melody phrases",
                                "a folder with exactly two subfolders of melodies, the domains A and B"),
    "mtnn": Recipe(train_mtnn, "chapter 8: multi-task network (region, tune type, meter, mode) of melodies",
                   f"{CLASSES}: your classes as the style task"),
    "rnn-evaluator": Recipe(train_rnn_evaluator, "chapter 9: GRU evaluator, a prediction after every step read",
                            f"{CLASSES}: your classes as the style task"),
}


def accepts_data(recipe) -> bool:
    """Whether a recipe trains on the user's own files (it takes a ``data`` keyword)."""
    return "data" in inspect.signature(recipe).parameters


__all__ = ["CHECKPOINTS", "RECIPES", "Recipe", "accepts_data", "UnpairedBatches", "cyclegan_step", "region_phrases",
           "score_symbolic_transfer", "score_timbre_transfer", "symbolic_strength_curve", "timbre_log_mels",
           "timbre_pairs",
           "train_cyclegan_symbolic", "train_cyclegan_timbre",
           "AUDIO_HELD_OUT_PITCHES", "AUDIO_PROGRAM", "AUDIO_SR", "AUDIO_TRAIN_PITCHES",
           "accuracy_vs_steps_read", "crop_batches", "crop_grids", "mtnn_step", "rnn_evaluator_step",
           "score_classifier", "train_mtnn", "train_rnn_evaluator",
           "audio_notes", "audio_step", "book_recording", "evaluate_gan", "gan_batches", "gan_step", "load_rnn",
           "melody_generation_report", "melody_slices", "melody_step", "next_token_step", "poly_batches", "poly_step", "recording_slices",
           "score_audio", "score_gan_diversity", "score_melody", "score_next_token", "score_pianoroll_file",
           "score_timbre", "timbre_split", "train_audio", "train_gan", "train_melody", "train_next_token", "train_poly", "train_recording_gan",
           "train_vae_melody", "train_vae_timbre", "vae_melody_step", "vae_timbre_step"]
