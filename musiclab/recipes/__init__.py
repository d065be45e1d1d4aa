"""Training recipes: one function per model the book trains, behind ``python -m musiclab train NAME``.

A recipe builds the data and the model at the size of the current mode, trains with `train.fit`
(resuming from ``out_dir/NAME.pt`` if a run was interrupted), evaluates on held-out data and writes
``out_dir/NAME.safetensors`` with a JSON sidecar recording the command, config, data, metrics,
device and wall time. Each chapter's recipes live in their own module; `RECIPES` maps the
command-line names to them.

Every recipe takes ``out_dir, steps, command`` (and may take ``progress``). **Your own data**
(``python -m musiclab train NAME --data PATH``): a recipe opts in by taking a keyword ``data=None``
(`accepts_data` checks the signature; the command line refuses ``--data`` for the others). Your files
come in through `datasets.user`, the one door for them. With a folder of melody files a recipe calls
``tunes, description, skipped = datasets.user.read_melodies(data, melody)`` (MIDI, ABC, MusicXML ->
`datasets.Tune` by split; a recipe that reads melodies also takes ``melody``, the rule for chords:
``--melody top`` keeps their highest note); a recipe that learns labels (the classifiers, the
symbolic CycleGAN) takes them from the folder layout, one class per subfolder, with ``tunes,
classes, description, skipped = datasets.user.read_classes(data)`` (a tune's class is its
``region``); with piano rolls ``rolls, description, skipped = datasets.user.read_pianoroll_folder(data)``;
with recordings ``segments, description, skipped = datasets.user.read_audio_segments(data, sr,
segment_s, model)`` (WAV, FLAC, OGG, MP3 -> checked, peak-normalised segments by split). All of them
print and skip unusable files and raise ``BadInputError`` when too little is left; splits come from
`datasets.split_ranked`. Put ``description`` (and ``skipped``) into the sidecar via
`common._finish`, keep the same `train.fit` call (checkpoints, progress, resuming), and size
batches with ``min(batch_size, n)`` so that a small folder still trains.

Under ``torchrun --nproc_per_node=N`` every recipe trains with DistributedDataParallel through
`train.fit` (nothing to do in a recipe; only the first process writes files).

Chapter: notebooks/02_learning_to_generate.ipynb
"""
import functools
import inspect

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

RECIPES = {
    "next-token": train_next_token,
    "gan": train_gan,
    "vae-melody": train_vae_melody,
    "vae-timbre": train_vae_timbre,
    "melody-rnn": train_melody,
    "poly-rnn": train_poly,
    "poly-made": functools.partial(train_poly, output="made"),
    "audio-rnn": train_audio,
    "audio-rnn-mse": functools.partial(train_audio, output="gaussian"),
    "recording-gan": train_recording_gan,
    "cyclegan-timbre": train_cyclegan_timbre,
    "cyclegan-symbolic": train_cyclegan_symbolic,
    "mtnn": train_mtnn,
    "rnn-evaluator": train_rnn_evaluator,
}


def accepts_data(recipe) -> bool:
    """Whether a recipe trains on the user's own files (it takes a ``data`` keyword)."""
    return "data" in inspect.signature(recipe).parameters


__all__ = ["CHECKPOINTS", "RECIPES", "accepts_data", "UnpairedBatches", "cyclegan_step", "region_phrases",
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
