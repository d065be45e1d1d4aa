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
keyword ``data=None`` (`accepts_data` checks the signature; the command line refuses ``--data`` for
the others). Your files come in through `datasets.user`, the one door for them. With a folder of
melody files a recipe calls
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

Code that uses a recipe's pieces names the chapter's module: ``recipes.gan.gan_step``,
``recipes.rnn.train_melody``; a trained model is loaded by its family's ``load_pretrained``
(``models.rnn.load_pretrained("melody-rnn")``).

Chapter: notebooks/02_learning_to_generate.ipynb
"""
import functools
import inspect
from typing import Callable, NamedTuple

from . import cyclegan, diffusion, evaluation, gan, next_token, recording, rnn, synthesis, transformer, vae


def train_gan_or_recording_gan(out_dir="runs", steps: int | None = None, command: str = "", data=None,
                               progress: bool = True, restart: bool = False, **settings) -> dict:
    """``train gan``: the chapter-3 conditional GAN (`gan.train_gan`); with your recording
    (``--data``), whose slices carry no instrument or pitch labels, chapter 14's single-condition
    version of the same GAN (`recording.train_recording_gan`, written as ``recording-gan``)."""
    if data is None:
        return gan.train_gan(out_dir, steps, command, progress=progress, restart=restart, **settings)
    return recording.train_recording_gan(out_dir, steps, command, data=data, progress=progress, restart=restart,
                                         **settings)


MELODIES = "a folder of melodies: MIDI, ABC, MusicXML (monophonic)"
RECORDINGS = "a recording or a folder of them: WAV, FLAC, OGG, MP3 (any rate, at least 5 s)"
CLASSES = "a folder with one subfolder of melodies per class (PATH/<class>/*.mid)"
PIANOROLLS = "a folder of MIDI files, or of train.npz, valid.npz (and test.npz) of (T, 88) 0/1 arrays, any key"


class Recipe(NamedTuple):
    """A model the command line trains: the recipe, one line on what it is, and what ``--data`` takes."""

    train: Callable[..., dict]
    about: str
    data: str


ONE_INSTRUMENT = ("recordings of one instrument, a file or a folder: WAV, FLAC, OGG, MP3 (any rate, at least 2 s); "
                  "trains ddsp-recording")

RECIPES = {
    "next-token": Recipe(next_token.train_next_token, "chapter 2: neural n-gram, the next token of a melody's event grid",
                         MELODIES),
    "gan": Recipe(train_gan_or_recording_gan, "chapter 3: conditional SpecGAN of instrument notes (log-mel)",
                  f"{RECORDINGS}; trains recording-gan"),
    "diffusion": Recipe(diffusion.train_diffusion, "chapter 7: conditional latent diffusion of the chapter-3 GAN's notes",
                        f"{RECORDINGS}; trains recording-diffusion"),
    "vae-melody": Recipe(vae.train_vae_melody, "chapter 6: VAE of 2-bar melodies (latent space, interpolation)", MELODIES),
    "vae-timbre": Recipe(vae.train_vae_timbre, "chapter 6: VAE of one-shot note log-mels (timbre space)", RECORDINGS),
    "melody-rnn": Recipe(rnn.train_melody, "chapter 4: LSTM language model of folk melodies, region and tune type",
                         MELODIES),
    "poly-rnn": Recipe(rnn.train_poly, "chapter 4: LSTM of piano rolls, independent notes per frame (chorales)",
                       PIANOROLLS),
    "poly-made": Recipe(functools.partial(rnn.train_poly, output="made"),
                        "chapter 4: LSTM of piano rolls, notes of a frame modelled jointly (NADE/MADE)", PIANOROLLS),
    "audio-rnn": Recipe(rnn.train_audio, "chapter 4: sample-level RNN of 8 kHz audio, mu-law categorical output",
                        RECORDINGS),
    "audio-rnn-mse": Recipe(functools.partial(rnn.train_audio, output="gaussian"),
                            "chapter 4: the same with a Gaussian output trained by MSE", RECORDINGS),
    "transformer-melody": Recipe(transformer.train_transformer_melody,
                                 "chapter 5: Transformer language model of folk melodies (relative attention), on melody-rnn's data",
                                 MELODIES),
    "transformer-chorale": Recipe(transformer.train_transformer_chorale,
                                  "chapter 5: Transformer over piano-roll frames with poly-made's MADE output (chorales)",
                                  PIANOROLLS),
    "recording-gan": Recipe(recording.train_recording_gan, "chapter 14: single-condition SpecGAN of slices of one recording",
                            RECORDINGS),
    "cyclegan-timbre": Recipe(cyclegan.train_cyclegan_timbre, "chapter 9: CycleGAN flute <-> clarinet on log-mels",
                              f"{MELODIES}, rendered on both instruments"),
    "cyclegan-symbolic": Recipe(cyclegan.train_cyclegan_symbolic, "chapter 9: CycleGAN between two regions' melody phrases",
                                "a folder with exactly two subfolders of melodies, the domains A and B"),
    "mtnn": Recipe(evaluation.train_mtnn, "chapter 11: multi-task network (region, tune type, meter, mode) of melodies",
                   f"{CLASSES}: your classes as the style task"),
    "rnn-evaluator": Recipe(evaluation.train_rnn_evaluator, "chapter 12: GRU evaluator, a prediction after every step read",
                            f"{CLASSES}: your classes as the style task"),
    "ddsp": Recipe(synthesis.train_ddsp, "chapter 10: DDSP decoder of the clarinet (harmonic + noise synthesiser) from "
                   "f0 and loudness, and its articulation of notes", ONE_INSTRUMENT),
    "ddsp-violin": Recipe(functools.partial(synthesis.train_ddsp, program=40),
                          "chapter 10: the same for the violin", ONE_INSTRUMENT),
    "vocoder": Recipe(synthesis.train_vocoder, "mel vocoder with an inverse-STFT head on the book's log-mel settings",
                      "a recording or a folder of them: WAV, FLAC, OGG, MP3 (any rate, at least 2 s)"),
}


def accepts_data(recipe) -> bool:
    """Whether a recipe trains on the user's own files (it takes a ``data`` keyword)."""
    return "data" in inspect.signature(recipe).parameters
