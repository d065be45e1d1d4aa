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

Code that uses a recipe's pieces names the chapter's module: ``recipes.gan.gan_step``,
``recipes.rnn.train_melody``; a trained model is loaded by its family's ``load_pretrained``
(``models.rnn.load_pretrained("melody-rnn")``).

Chapter: notebooks/02_learning_to_generate.ipynb
"""
import functools
import inspect

from . import cyclegan, evaluation, gan, next_token, recording, rnn, vae


def train_gan_or_recording_gan(out_dir="runs", steps: int | None = None, command: str = "", data=None,
                               progress: bool = True) -> dict:
    """``train gan``: the chapter-3 conditional GAN (`gan.train_gan`); with your recording
    (``--data``), whose slices carry no instrument or pitch labels, chapter 11's single-condition
    version of the same GAN (`recording.train_recording_gan`, written as ``recording-gan``)."""
    if data is None:
        return gan.train_gan(out_dir, steps, command, progress=progress)
    return recording.train_recording_gan(out_dir, steps, command, data=data, progress=progress)


RECIPES = {
    "next-token": next_token.train_next_token,
    "gan": train_gan_or_recording_gan,
    "vae-melody": vae.train_vae_melody,
    "vae-timbre": vae.train_vae_timbre,
    "melody-rnn": rnn.train_melody,
    "poly-rnn": rnn.train_poly,
    "poly-made": functools.partial(rnn.train_poly, output="made"),
    "audio-rnn": rnn.train_audio,
    "audio-rnn-mse": functools.partial(rnn.train_audio, output="gaussian"),
    "recording-gan": recording.train_recording_gan,
    "cyclegan-timbre": cyclegan.train_cyclegan_timbre,
    "cyclegan-symbolic": cyclegan.train_cyclegan_symbolic,
    "mtnn": evaluation.train_mtnn,
    "rnn-evaluator": evaluation.train_rnn_evaluator,
}


def accepts_data(recipe) -> bool:
    """Whether a recipe trains on the user's own files (it takes a ``data`` keyword)."""
    return "data" in inspect.signature(recipe).parameters
