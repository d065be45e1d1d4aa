"""The chapter-9 CycleGANs: ``python -m musiclab train cyclegan-timbre | cyclegan-symbolic``.

Chapter: notebooks/09_style_transfer_gan.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .. import audio, datasets, losses, symbolic, train
from ..errors import BadInputError
from .common import TrainingSettings, _finish, pick_settings, run_identity

TIMBRE_PROGRAMS = (73, 71)  # flute (A) <-> clarinet (B)
SYMBOLIC_REGIONS = ("German", "Chinese")
PHRASE_BARS = 4  # symbolic phrases: 4 bars of 16 sixteenths = 64 steps


class UnpairedBatches:
    """An iterable of ``(batch_a, batch_b)`` drawn independently from two unpaired sets.

    ``items_*`` are arrays [shape=(C, T_i)] (``n_frames`` given: a random window of that many frames is
    cut from each drawn item) or rows of one array [shape=(N, T)]. One pass is ``batches_per_pass``
    batches; nothing pairs an ``a`` with a ``b``. Each pass draws from a generator seeded by
    ``seed`` and torch's random state when the pass starts (which `train.fit` seeds per step), so
    the batches of a resumed run are those of an uninterrupted one.
    """

    def __init__(self, items_a, items_b, batch_size: int, n_frames: int | None = None,
                 batches_per_pass: int = 100, seed: int = 0):
        self.items = (items_a, items_b)
        self.batch_size, self.n_frames, self.batches_per_pass, self.seed = batch_size, n_frames, batches_per_pass, seed

    def _draw(self, items, rng) -> torch.Tensor:
        picked = [items[i] for i in rng.integers(len(items), size=self.batch_size)]
        if self.n_frames is not None:
            starts = [rng.integers(x.shape[-1] - self.n_frames + 1) for x in picked]
            picked = [x[..., s:s + self.n_frames] for x, s in zip(picked, starts)]
        return torch.from_numpy(np.stack(picked))

    def __iter__(self):
        rng = np.random.default_rng([self.seed, int(torch.randint(2**62, ()))])
        for _ in range(self.batches_per_pass):
            yield tuple(self._draw(items, rng) for items in self.items)


def cyclegan_step(model, discriminator_a, discriminator_b, lambda_cycle: float = 10.0,
                  lambda_identity: float = 5.0):
    """The CycleGAN step: one update of both discriminators, then one of both generators.

    D_B learns to score real b above G(a), D_A real a above F(b) (hinge losses); then G and F
    minimise `losses.cyclegan_generator_loss`. Timbre batches are log-mel patches compared with the L1
    distance; symbolic batches are token grids: the generators see one-hot grids, their outputs are
    made one-hot by `models.cyclegan.hard_tokens`, and cycle and identity use the cross-entropy.
    Logged: the losses, the cycle and identity terms, and D's accuracy on real and translated batches.
    """
    from ..models import cyclegan

    symbolic_kind = model.config.kind == "symbolic"
    distance = "cross_entropy" if symbolic_kind else "l1"
    as_input = cyclegan.grids_to_one_hot if symbolic_kind else (lambda x: x)
    as_output = cyclegan.hard_tokens if symbolic_kind else (lambda x: x)

    def step(batch, update):
        a, b = batch
        x_a, x_b = as_input(a), as_input(b)
        fake_b, fake_a = as_output(model.a_to_b(x_a)), as_output(model.b_to_a(x_b))
        real_scores_b, real_scores_a = discriminator_b(x_b), discriminator_a(x_a)
        fake_scores_b, fake_scores_a = discriminator_b(fake_b.detach()), discriminator_a(fake_a.detach())
        d_loss = (losses.hinge_discriminator_loss(real_scores_b, fake_scores_b)
                  + losses.hinge_discriminator_loss(real_scores_a, fake_scores_a))
        update(d_loss, "discriminators")
        cycle = losses.cycle_consistency_loss(a, model.b_to_a(fake_b), b, model.a_to_b(fake_a), distance)
        identity = losses.identity_loss(a, model.b_to_a(x_a), b, model.a_to_b(x_b), distance)
        g_loss = losses.cyclegan_generator_loss(discriminator_b(fake_b), discriminator_a(fake_a), cycle, identity,
                                                lambda_cycle, lambda_identity)
        update(g_loss, "generators")
        return {"d_loss": d_loss, "g_loss": g_loss, "cycle": cycle, "identity": identity,
                "d_accuracy_real": 0.5 * ((real_scores_a > 0).float().mean() + (real_scores_b > 0).float().mean()),
                "d_accuracy_fake": 0.5 * ((fake_scores_a < 0).float().mean() + (fake_scores_b < 0).float().mean())}

    return step


@dataclasses.dataclass(frozen=True)
class CycleGanTimbreSettings(TrainingSettings):
    """Training settings of ``cyclegan-timbre`` (defaults: full mode; `CYCLEGAN_TIMBRE_SETTINGS` holds
    both presets). The learning rate is constant for half the run, then falls linearly to 0
    (`train.constant_then_linear_decay`); ``train_tunes``, ``valid_pairs``, ``test_tunes``: tunes
    spread over each split; ``max_quarters``: the opening rendered of each tune.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """

    steps: int = 2000
    batch_size: int = 16
    lr: float = 5e-4
    log_every: int = 50
    eval_every: int = 200
    checkpoint_every: int = 250
    hidden: int = 96
    n_blocks: int = 4
    max_quarters: float = 32
    n_frames: int = 64  # about one second per patch
    train_tunes: int = 600
    valid_pairs: int = 24
    test_tunes: int = 40
    programs: tuple = TIMBRE_PROGRAMS
    lambda_cycle: float = 10.0
    lambda_identity: float = 5.0


CYCLEGAN_TIMBRE_SETTINGS = {"full": CycleGanTimbreSettings(),
                            "quick": CycleGanTimbreSettings(steps=100, lr=1e-3, log_every=10, eval_every=10, hidden=64,
                                                            n_blocks=3, max_quarters=16, train_tunes=120, valid_pairs=6,
                                                            test_tunes=8)}


@dataclasses.dataclass(frozen=True)
class CycleGanSymbolicSettings(TrainingSettings):
    """Training settings of ``cyclegan-symbolic`` (defaults: full mode; `CYCLEGAN_SYMBOLIC_SETTINGS` holds
    both presets). Learning rate as in `CycleGanTimbreSettings`; cycle and identity weights small
    (see `train_cyclegan_symbolic`).

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """

    steps: int = 2000
    lr: float = 5e-4
    log_every: int = 50
    checkpoint_every: int = 250
    hidden: int = 96
    n_blocks: int = 4
    regions: tuple = SYMBOLIC_REGIONS
    lambda_cycle: float = 1.0
    lambda_identity: float = 0.1


CYCLEGAN_SYMBOLIC_SETTINGS = {"full": CycleGanSymbolicSettings(),
                              "quick": CycleGanSymbolicSettings(steps=100, lr=1e-3, log_every=10, hidden=64,
                                                                n_blocks=3)}


def _optimizers(model, discriminator_a, discriminator_b, lr: float) -> dict:
    betas = (0.5, 0.999)
    return {"generators": torch.optim.Adam(model.parameters(), lr=lr, betas=betas),
            "discriminators": torch.optim.Adam(list(discriminator_a.parameters()) + list(discriminator_b.parameters()),
                                               lr=lr, betas=betas)}


def _spread(items: list, n: int) -> list:
    """``n`` items taken evenly across ``items`` (the corpus is ordered by collection)."""
    return items[::max(1, len(items) // n)][:n]


# Timbre ------------------------------------------------------------------------------------------------


def timbre_log_mels(tunes, program: int, max_quarters: float) -> list[np.ndarray]:
    """The opening ``max_quarters`` quarter notes of each tune rendered on ``program``, as encoded
    log-mels [shape=(N_MELS, T_i)] (`models.cyclegan.encode_log_mel`)."""
    from ..models import cyclegan

    return [cyclegan.encode_log_mel(cyclegan.melody_log_mel(t.notes, program, max_quarters)) for t in tunes]


def timbre_pairs(tunes, programs=TIMBRE_PROGRAMS, max_quarters: float = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ground truth for evaluation: each tune's opening rendered on both programs, log-mels in nats."""
    from ..models import cyclegan

    return [(cyclegan.melody_log_mel(t.notes, programs[0], max_quarters),
             cyclegan.melody_log_mel(t.notes, programs[1], max_quarters)) for t in tunes]


def score_timbre_transfer(model, pairs) -> dict:
    """Mean log-spectral distance (dB, `audio.log_spectral_distance_db`) to the true rendering.

    ``translated_*``: G(a) against b and F(b) against a; ``input_*``: the untransformed input
    against the target (the baseline); ``ratio_a_to_b`` = translated / input (the bar: <= 0.5).
    """
    from ..models import cyclegan

    distance = audio.log_spectral_distance_db
    floor = cyclegan.FLOOR_DB
    rows = [(distance(cyclegan.translate_log_mel(model, a, "a_to_b"), b, floor), distance(a, b, floor),
             distance(cyclegan.translate_log_mel(model, b, "b_to_a"), a, floor)) for a, b in pairs]
    translated_ab, input_ab, translated_ba = np.mean(rows, axis=0)
    return {"lsd_translated_a_to_b": float(translated_ab), "lsd_input": float(input_ab),
            "lsd_translated_b_to_a": float(translated_ba), "ratio_a_to_b": float(translated_ab / input_ab)}


def train_cyclegan_timbre(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                          data: str | None = None, melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-9 timbre CycleGAN: flute <-> clarinet log-mels of *different* folk melodies.
    ``settings``: fields of `CycleGanTimbreSettings` to change (e.g. ``programs=(73, 40)``).

    Training: the train split's tunes (or the melody files in folder ``data``, see
    `datasets.user.read_melodies`, ``melody`` its rule for chords; unusable files are skipped and listed in the
    sidecar) alternate
    between the sides (even -> A, odd -> B), so no melody is heard on both instruments. Early stopping
    on the valid split's log-spectral distance (paired renderings, used only to pick the checkpoint);
    the figures reported are on the corpus's test split.
    """
    from ..models import cyclegan

    start = time.perf_counter()
    settings = pick_settings("cyclegan-timbre", CYCLEGAN_TIMBRE_SETTINGS, steps, **settings)
    programs = settings.programs
    program_a, program_b = programs
    model_config = cyclegan.CycleGanConfig(n_channels=cyclegan.N_MELS, hidden=settings.hidden,
                                           n_blocks=settings.n_blocks, kind="timbre",
                                           domain_a=str(program_a), domain_b=str(program_b))
    max_quarters = settings.max_quarters
    skipped = []
    if data is None:
        tunes = _spread(datasets.load_folk("train"), settings.train_tunes)
    else:
        by_split, _, skipped = datasets.user.read_melodies(data, melody)
        tunes = sorted((t for split in by_split.values() for t in split), key=lambda t: t.id)  # by file name
    n_frames = settings.n_frames
    side_a = [x for x in timbre_log_mels(tunes[0::2], program_a, max_quarters) if x.shape[-1] >= n_frames]
    side_b = [x for x in timbre_log_mels(tunes[1::2], program_b, max_quarters) if x.shape[-1] >= n_frames]
    if not side_a or not side_b:
        raise BadInputError(f"no melody of {'side A' if not side_a else 'side B'} lasts {n_frames} frames (1 s)")
    valid_pairs = timbre_pairs(_spread(datasets.load_folk("valid"), settings.valid_pairs), programs)
    model = cyclegan.CycleGAN(model_config)
    discriminator_a, discriminator_b = cyclegan.Discriminator(model_config), cyclegan.Discriminator(model_config)
    source = f"{len(tunes)} train tunes" if data is None else f"{len(tunes)} melodies from {data}"
    out_dir = Path(out_dir)
    optimizers = _optimizers(model, discriminator_a, discriminator_b, lr=settings.lr)
    history = train.fit({"model": model, "discriminator_a": discriminator_a, "discriminator_b": discriminator_b},
                        optimizers, cyclegan_step(model, discriminator_a, discriminator_b, settings.lambda_cycle,
                                                  settings.lambda_identity),
                        UnpairedBatches(side_a, side_b, batch_size=settings.batch_size, n_frames=n_frames,
                                        seed=settings.seed), settings.steps,
                        evaluate=lambda: score_timbre_transfer(model, valid_pairs), eval_every=settings.eval_every,
                        keep_best="lsd_translated_a_to_b", log_every=settings.log_every, grad_clip=None,
                        lr_schedule=lambda step: train.constant_then_linear_decay(step, settings.steps),
                        seed=settings.seed, checkpoint_path=out_dir / "cyclegan-timbre.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, source), config=model_config,
                        started=start, progress=progress, desc="timbre CycleGAN")
    test_tunes = _spread(datasets.load_folk("test"), settings.test_tunes)
    test = score_timbre_transfer(model, timbre_pairs(test_tunes, programs))
    metrics = {**{f"test_{k}": round(v, 4) for k, v in test.items()}, "steps": settings.steps,
               "best_valid_lsd": round(history.best_score, 4), "best_step": history.best_step}
    description = (f"melodies rendered with TimGM6mb at {cyclegan.TIMBRE_QPM} qpm: {source}, "
                   f"opening {max_quarters} quarters, even ones on program {program_a} ({audio.program_name(program_a)}), "
                   f"odd ones on {program_b} ({audio.program_name(program_b)}), unpaired; {n_frames}-frame patches. "
                   f"Early stopping on {len(valid_pairs)} valid pairs; test: {len(test_tunes)} test tunes spread "
                   "over the split, rendered on both, opening 16 quarters")
    return _finish("cyclegan-timbre", out_dir, model, model_config, settings, metrics, history, command, description,
                   skipped_files=skipped, history=[r for r in history if "lsd_translated_a_to_b" in r])


# Symbolic ----------------------------------------------------------------------------------------------


def region_phrases(tunes, region: str, hop_bars: int = 2) -> np.ndarray:
    """4-bar phrases (64 steps, `symbolic.slice_grid`) of the tunes of ``region`` [shape=(N, 64)]."""
    parts = [symbolic.slice_grid(t.grid, PHRASE_BARS, hop_bars=hop_bars) for t in tunes if t.region == region]
    return np.concatenate(parts) if parts else np.zeros((0, PHRASE_BARS * 16), dtype=np.int64)


def score_symbolic_transfer(model, phrases_a, phrases_b, classifier=None, strength: bool = True) -> dict:
    """Transfer strength (`style.transfer_strength`, the region classifier of chapter 11) and content
    preservation (`style.content_preservation`) of G on ``phrases_a`` and of F on ``phrases_b``.

    ``strength_before_*`` is the target region's probability on the untransformed phrases.
    ``strength=False`` leaves both out (content preservation only): for domains the classifier
    does not know, such as your own class folders.
    """
    from .. import style
    from ..models import cyclegan, mtnn

    classifier = classifier or (mtnn.load_pretrained() if strength else None)
    region_a, region_b = model.config.domain_a, model.config.domain_b
    scores = {}
    for name, phrases, direction, target in (("a_to_b", phrases_a, "a_to_b", region_b),
                                             ("b_to_a", phrases_b, "b_to_a", region_a)):
        translated = cyclegan.translate_grids(model, phrases, direction)
        if strength:
            scores[f"strength_before_{name}"] = style.transfer_strength(phrases, target, classifier)
            scores[f"strength_{name}"] = style.transfer_strength(translated, target, classifier)
        kept = style.content_preservation(phrases, translated)
        scores[f"onset_{name}"] = kept["onset_agreement"]
        scores[f"contour_{name}"] = kept["contour_agreement"]
        scores[f"changed_steps_{name}"] = float((translated != phrases).mean())
    return scores


def symbolic_strength_curve(model, phrases, direction: str, strengths=(0.0, 0.5, 1.0, 1.5, 2.0),
                            classifier=None) -> list[dict]:
    """Transfer strength and content preservation of ``phrases`` translated at each generator strength.

    Rows ``{"alpha": s, "strength", "strength_7way", "onset_agreement", "contour_agreement",
    "changed_steps"}``: ``strength`` is the two-domain strength P(target) / (P(target) + P(source)), the
    judge of Brunner et al. 2018 (`style.transfer_strength` with ``versus``), ``strength_7way`` the
    plain probability of the target among the classifier's 7 regions. The format is that of
    `style.pick_operating_point` (pick s on validation phrases, report it on test phrases).
    """
    from .. import style
    from ..models import cyclegan, mtnn

    classifier = classifier or mtnn.load_pretrained()
    source, target = model.config.domain_a, model.config.domain_b
    if direction == "b_to_a":
        source, target = target, source
    rows = []
    for s in strengths:
        moved = cyclegan.translate_grids(model, phrases, direction, s)
        kept = style.content_preservation(phrases, moved)
        rows.append({"alpha": float(s), "strength": style.transfer_strength(moved, target, classifier, versus=source),
                     "strength_7way": style.transfer_strength(moved, target, classifier),
                     "onset_agreement": kept["onset_agreement"], "contour_agreement": kept["contour_agreement"],
                     "changed_steps": float((moved != phrases).mean())})
    return rows


def _two_domains(data, melody: str = "single") -> tuple[dict, tuple[str, str], str, list]:
    """Your two domains for the symbolic CycleGAN: ``data`` must hold exactly two subfolders of melody
    files, A and B in name order (`datasets.user.read_classes`). Returns ``(tunes by split, (A, B),
    description, skipped files)``; another number of subfolders raises ``BadInputError`` naming them."""
    tunes, classes, description, skipped = datasets.user.read_classes(data, melody=melody, n_classes=2)
    return tunes, tuple(classes), description, skipped


def train_cyclegan_symbolic(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                            data: str | None = None, melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-9 symbolic CycleGAN: 4-bar phrases of two regions' folk melodies (unpaired by nature).
    ``settings``: fields of `CycleGanSymbolicSettings` to change (e.g. ``regions=("Irish", "Chinese")``).

    Cycle and identity use the cross-entropy with small weights (``lambda_cycle`` 1, ``lambda_identity``
    0.1): with the audio model's 10 and 5 the generators learned to copy (0.5 % of steps changed in a
    quick run). Scored on the test split's phrases (hop 4 bars) with the shipped region classifier
    (chapter 11).

    With ``data`` (a folder with exactly two subfolders of melody files, the domains A and B in name
    order, `_two_domains`) it trains on the train split of your files and reports content
    preservation on your test files (valid when a folder has fewer than 10). Transfer strength is
    left out: the shipped classifier knows only the corpus's regions, and a classifier trained on
    the few files of the same folder would be a weak judge of the model trained on them; train
    ``mtnn --data`` on more files of the two styles and score with `symbolic_strength_curve` if you
    need it.
    """
    from ..models import cyclegan

    start = time.perf_counter()
    settings = pick_settings("cyclegan-symbolic", CYCLEGAN_SYMBOLIC_SETTINGS, steps, **settings)
    regions, held_out, skipped = settings.regions, "test", []
    if data is None:
        tunes = {split: datasets.load_folk(split, regions=regions) for split in ("train", held_out)}
    else:
        tunes, regions, description, skipped = _two_domains(data, melody)
        held_out = "test" if tunes["test"] else "valid"
    region_a, region_b = regions
    model_config = cyclegan.CycleGanConfig(n_channels=symbolic.VOCAB_SIZE, hidden=settings.hidden,
                                           n_blocks=settings.n_blocks, kernel_size=3, kind="symbolic",
                                           domain_a=region_a, domain_b=region_b)
    side_a, side_b = region_phrases(tunes["train"], region_a), region_phrases(tunes["train"], region_b)
    for side, region in ((side_a, region_a), (side_b, region_b)):
        if not len(side):
            raise BadInputError(f"no training melody of {region!r} gives a 4-bar phrase (64 sixteenths, no rest "
                                "longer than a bar); bring longer melodies")
    model = cyclegan.CycleGAN(model_config)
    discriminator_a, discriminator_b = cyclegan.Discriminator(model_config), cyclegan.Discriminator(model_config)
    optimizers = _optimizers(model, discriminator_a, discriminator_b, lr=settings.lr)
    out_dir = Path(out_dir)
    history = train.fit({"model": model, "discriminator_a": discriminator_a, "discriminator_b": discriminator_b},
                        optimizers, cyclegan_step(model, discriminator_a, discriminator_b, settings.lambda_cycle,
                                                  settings.lambda_identity),
                        UnpairedBatches(side_a, side_b, batch_size=settings.batch_size, seed=settings.seed),
                        settings.steps, log_every=settings.log_every, grad_clip=None,
                        lr_schedule=lambda step: train.constant_then_linear_decay(step, settings.steps),
                        seed=settings.seed, checkpoint_path=out_dir / "cyclegan-symbolic.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, f"folk melodies of {list(regions)}"),
                        config=model_config, started=start, progress=progress, desc="symbolic CycleGAN")
    test_a, test_b = (region_phrases(tunes[held_out], r, hop_bars=PHRASE_BARS) for r in regions)
    test = score_symbolic_transfer(model, test_a, test_b, strength=data is None) if len(test_a) and len(test_b) else {}
    metrics = {**{f"{held_out}_{k}": round(v, 4) for k, v in test.items()}, "steps": settings.steps,
               "n_train_phrases": [len(side_a), len(side_b)], f"n_{held_out}_phrases": [len(test_a), len(test_b)]}
    if data is None:
        description = (f"4-bar (64-step) phrases of the train split's {region_a} and {region_b} folk melodies, hop 2 "
                       "bars, untransposed; test: the test split's phrases, hop 4 bars; strength by the shipped mtnn "
                       "region classifier")
    else:
        description += (f"; A = {region_a}, B = {region_b}: 4-bar phrases of the train files, hop 2 bars; scored on "
                        f"the {held_out} files' phrases, hop 4 bars"
                        f"{'' if held_out == 'test' else ' (no test file: fewer than 10 per class)'}"
                        f"{'' if test else ' (none of both domains: nothing scored)'}; content preservation only, "
                        "no transfer strength: the shipped region classifier does not know your domains")
    return _finish("cyclegan-symbolic", out_dir, model, model_config, settings, metrics, history, command,
                   description, history=[r for r in history if "cycle" in r][-20:],
                   **({"classes": list(regions), "skipped": skipped} if data is not None else {}))
