"""Recurrent models of chapter 4: a melody language model and two polyphonic models.

- `MelodyRNN`: an LSTM over event-grid tokens (in the spirit of folk-rnn), conditioned on region
  and tune type, sampled with temperature and top-k, primed with any opening.
- `PolyRNN`: an LSTM over piano-roll frames whose output is either 88 independent Bernoullis
  (``output="independent"``) or a MADE over the 88 keys of each frame (``output="made"``), which is
  autoregressive *within* the frame, like the RNN-NADE of Boulanger-Lewandowski et al. (2012).

The chapter's raw-audio model is in `musiclab.models.audio_rnn`. Every ``forward`` returns logits;
the losses live in `musiclab.losses` (# Sequences), the scores in `musiclab.metrics`.

Chapter: notebooks/04_rnn.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import symbolic, weights
from ..errors import BadInputError


# Melody RNN ----------------------------------------------------------------------------------------

UNKNOWN = "unknown"  # the condition label for "no label": a user's tune, or "any region"


@dataclass
class MelodyConfig:
    vocab_size: int = symbolic.VOCAB_SIZE  # output tokens; the input adds one start token
    regions: list = field(default_factory=list)  # condition labels; index 0 is always UNKNOWN
    tune_types: list = field(default_factory=list)
    embed_dim: int = 64
    condition_dim: int = 16
    hidden_dim: int = 256
    n_layers: int = 2
    dropout: float = 0.2

    @property
    def start_token(self) -> int:
        return self.vocab_size


class MelodyRNN(nn.Module):
    """p(x_t | x_<t, region, tune type): an LSTM language model over event-grid tokens.

    Each input step is [embedding of x_{t-1}; embedding of the region; embedding of the tune type].
    The sequence starts with the start token ``config.start_token``.

    Parameters
    ----------
    tokens : LongTensor [shape=(B, T)], values in [0, vocab_size] (vocab_size = start)
    region, tune_type : LongTensor [shape=(B,)], indices into ``config.regions`` / ``config.tune_types``
    state : the LSTM state from a previous call, optional

    Returns
    -------
    logits : Tensor [shape=(B, T, vocab_size)], for the token *after* each input token
    state : tuple of Tensor, to continue the sequence
    """

    def __init__(self, config: MelodyConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size + 1, config.embed_dim)
        self.embed_region = nn.Embedding(max(len(config.regions), 1), config.condition_dim)
        self.embed_tune_type = nn.Embedding(max(len(config.tune_types), 1), config.condition_dim)
        self.lstm = nn.LSTM(config.embed_dim + 2 * config.condition_dim, config.hidden_dim,
                            config.n_layers, batch_first=True,
                            dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_dim, config.vocab_size)

    def forward(self, tokens, region, tune_type, state=None):
        T = tokens.shape[1]
        condition = torch.cat([self.embed_region(region), self.embed_tune_type(tune_type)], -1)
        x = torch.cat([self.embed(tokens), condition[:, None].expand(-1, T, -1)], -1)
        h, state = self.lstm(self.dropout(x), state)
        return self.head(self.dropout(h)), state

    def condition_index(self, region: str | None = None, tune_type: str | None = None) -> tuple[int, int]:
        """The indices of a region and a tune type (None or an unseen label -> UNKNOWN)."""
        def index(labels, label):
            return labels.index(label) if label in labels else 0
        return index(self.config.regions, region), index(self.config.tune_types, tune_type)

    @torch.no_grad()
    def generate(self, n_steps: int, prime=None, region: str | None = None, tune_type: str | None = None,
                 temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> np.ndarray:
        """Sample ``n_steps`` tokens after ``prime`` (event-grid tokens, may be empty or None).

        Each step samples from softmax(logits / temperature), restricted to the ``top_k`` most likely
        tokens if given. Returns the new tokens only, int64 [shape=(n_steps,)].
        """
        prime = check_sampling_args(self.config.vocab_size, temperature, top_k, prime=prime)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        region_i, tune_type_i = self.condition_index(region, tune_type)
        region_t = torch.tensor([region_i], device=device)
        tune_type_t = torch.tensor([tune_type_i], device=device)
        tokens = torch.tensor([[self.config.start_token, *prime.tolist()]], device=device)
        logits, state = self(tokens, region_t, tune_type_t)
        logits = logits[0, -1]
        out = torch.empty(n_steps, dtype=torch.long)
        for i in range(n_steps):
            logits = logits / temperature
            if top_k is not None:
                threshold = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < threshold, float("-inf"))
            token = torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=generator)
            out[i] = token
            logits, state = self(token.to(device)[None], region_t, tune_type_t, state)
            logits = logits[0, -1]
        self.train(was_training)
        return out.numpy()


def check_sampling_args(vocab_size: int, temperature: float, top_k: int | None = None, top_p: float | None = None,
                        prime=None) -> np.ndarray:
    """Check a melody model's sampling settings; returns ``prime`` as int64 tokens [shape=(T0,)]
    (empty for None). BadInputError names the first bad one.

    Chapter: notebooks/04_rnn.ipynb
    """
    if temperature <= 0:
        raise BadInputError(f"temperature={temperature}: expected > 0")
    if top_k is not None and not 1 <= top_k <= vocab_size:
        raise BadInputError(f"top_k={top_k}: expected 1..{vocab_size}")
    if top_p is not None and not 0 < top_p <= 1:
        raise BadInputError(f"top_p={top_p}: expected 0 < top_p <= 1")
    prime = np.asarray([] if prime is None else prime, dtype=np.int64)
    if prime.size and (prime.min() < 0 or prime.max() >= vocab_size):
        raise BadInputError(f"prime: tokens must lie in 0..{vocab_size - 1}")
    return prime


def melody_to_prime(path_or_abc_text, max_steps: int | None = None) -> np.ndarray:
    """Read a monophonic MIDI / ABC / MusicXML melody and return its event-grid tokens to prime with.

    Raises `BadInputError` for polyphonic, empty or out-of-range melodies (from `symbolic`).
    """
    grid = symbolic.notes_to_grid(symbolic.read_melody(path_or_abc_text))
    if grid.size == 0:
        raise BadInputError("the priming melody is empty")
    return grid[:max_steps] if max_steps else grid


# Polyphonic RNN (piano rolls) ---------------------------------------------------------------------


@dataclass
class PolyConfig:
    n_keys: int = 88
    hidden_dim: int = 256
    n_layers: int = 1
    dropout: float = 0.3
    output: str = "independent"  # or "made"
    made_dim: int = 256


def made_masks(n_keys: int, made_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MADE's connectivity masks for the key order low -> high (Germain et al. 2015).

    Key k has degree k + 1; hidden unit d gets a degree m_d in 1..n_keys - 1. Input j may feed unit
    d if j + 1 <= m_d; unit d may feed output k if m_d < k + 1. So output k sees only keys j < k.
    Returns ``(input_to_hidden [shape=(D, K)], hidden_to_output [shape=(K, D)],
    input_to_output [shape=(K, K)])``, the last the strictly lower-triangular direct connections.
    """
    key_degree = torch.arange(1, n_keys + 1)
    unit_degree = torch.arange(made_dim) % (n_keys - 1) + 1
    return ((unit_degree[:, None] >= key_degree[None, :]).float(),
            (key_degree[:, None] > unit_degree[None, :]).float(),
            torch.tril(torch.ones(n_keys, n_keys), diagonal=-1))


class PianoRollModel(nn.Module):
    """What every piano-roll model of the book shares: given a summary h_t of the frames before t
    (from the subclass's ``summarise``), the log-odds of frame v_t, either independent or
    autoregressive within the frame, and sampling frame by frame.

    - ``"independent"``: s_{t,k} = (W h_t + b)_k, so p(v_t | h_t) = prod_k Bernoulli(sigma(s_{t,k})).
    - ``"made"``: the keys are predicted from low to high, each given h_t and the keys below it:
      u_t = relu((M1 * W1) v_t + U h_t + c),  s_t = (M2 * W2) u_t + (M3 * W3) v_t + W h_t + b,
      with the MADE masks M1, M2, M3 of `made_masks` (Germain et al. 2015), so that s_{t,k} depends
      on v_{t,j} only for j < k. Teacher-forced training is one pass; the chain rule makes the sum of
      the 88 Bernoulli terms the exact log-likelihood of the whole frame, as in the RNN-NADE of
      Boulanger-Lewandowski et al. (2012), whose NADE is a special case of this construction.

    A subclass calls ``super().__init__(config, context_dim)`` (``config`` has ``n_keys``,
    ``output``, ``made_dim``, ``dropout``) and defines ``summarise(roll, state=None) -> (h, state)``.

    Chapter: notebooks/04_rnn.ipynb
    """

    def __init__(self, config, context_dim: int):
        super().__init__()
        if config.output not in ("independent", "made"):
            raise BadInputError(f"output={config.output!r}: expected 'independent' or 'made'")
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.key_bias = nn.Linear(context_dim, config.n_keys)
        if config.output == "made":
            K, D = config.n_keys, config.made_dim
            self.input_to_hidden = nn.Linear(K, D)
            self.context_to_hidden = nn.Linear(context_dim, D, bias=False)
            self.hidden_to_output = nn.Linear(D, K, bias=False)
            self.input_to_output = nn.Linear(K, K, bias=False)
            for name, mask in zip(("mask_in", "mask_out", "mask_direct"), made_masks(K, D)):
                self.register_buffer(name, mask, persistent=False)

    def frame_logits(self, h, frame):
        """Log-odds of ``frame`` [shape=(..., n_keys)] given h [shape=(..., context_dim)]."""
        bias = self.key_bias(h)
        if self.config.output == "independent":
            return bias
        v = frame.float()
        u = torch.relu(nn.functional.linear(v, self.input_to_hidden.weight * self.mask_in,
                                            self.input_to_hidden.bias) + self.context_to_hidden(h))
        return (bias + nn.functional.linear(self.dropout(u), self.hidden_to_output.weight * self.mask_out)
                + nn.functional.linear(v, self.input_to_output.weight * self.mask_direct))

    def forward(self, roll):
        h, _ = self.summarise(roll[:, :-1])
        return self.frame_logits(h, roll[:, 1:])

    @torch.no_grad()
    def sample_frame(self, h, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one frame [shape=(B, n_keys)] given h [shape=(B, context_dim)]: all keys at once
        (independent), or key by key from low to high, each pass fixing one more key (MADE)."""
        frame = torch.zeros(h.shape[0], self.config.n_keys, device=h.device)
        keys = range(self.config.n_keys) if self.config.output == "made" else [slice(None)]
        for k in keys:
            p = torch.sigmoid(self.frame_logits(h, frame)[:, k])
            frame[:, k] = torch.bernoulli(p.cpu(), generator=generator).to(h.device)
        return frame

    @torch.no_grad()
    def generate(self, n_frames: int, prime=None, generator: torch.Generator | None = None) -> np.ndarray:
        """Sample ``n_frames`` frames after ``prime`` (uint8 [shape=(T0 >= 1, n_keys)]; default: the
        first frame is a C major triad). Returns the prime and the new frames, uint8 [shape=(T0 + n, K)]."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        if prime is None:
            prime = np.zeros((1, self.config.n_keys), dtype=np.uint8)
            prime[0, [48 - 21, 60 - 21, 64 - 21, 67 - 21]] = 1  # C3 C4 E4 G4
        prime = check_rolls([prime], self.config.n_keys)[0]
        frames = [torch.from_numpy(prime).float().to(device)]
        h, state = self.summarise(frames[0][None])
        h = h[:, -1]
        for _ in range(n_frames):
            frame = self.sample_frame(h, generator)
            frames.append(frame)
            h, state = self.summarise(frame[:, None], state)
            h = h[:, -1]
        self.train(was_training)
        return torch.cat(frames).cpu().numpy().astype(np.uint8)


class PolyRNN(PianoRollModel):
    """An LSTM over piano-roll frames with independent or within-frame autoregressive (MADE) outputs
    (`PianoRollModel`): the LSTM reads the previous frame v_{t-1} and summarises the past in h_t.

    Parameters
    ----------
    roll : Tensor [shape=(B, T, n_keys)], 0/1 frames v_0 .. v_{T-1}

    Returns
    -------
    logits : Tensor [shape=(B, T - 1, n_keys)], the log-odds of frames v_1 .. v_{T-1} (for MADE,
        each key's log-odds given the true keys below it: teacher forcing within the frame)
    """

    def __init__(self, config: PolyConfig):
        super().__init__(config, config.hidden_dim)
        self.lstm = nn.LSTM(config.n_keys, config.hidden_dim, config.n_layers, batch_first=True,
                            dropout=config.dropout if config.n_layers > 1 else 0.0)

    def summarise(self, roll, state=None):
        """h_t for each next frame: [shape=(B, T, hidden_dim)] from frames [shape=(B, T, n_keys)]."""
        h, state = self.lstm(roll.float(), state)
        return self.dropout(h), state


def check_rolls(rolls, n_keys: int = 88, name: str = "piano roll") -> list[np.ndarray]:
    """Check a list of piano rolls: each 2-D (T >= 2, n_keys), finite, 0/1; return them as uint8."""
    if len(rolls) == 0:
        raise BadInputError(f"{name}: no piano rolls (empty)")
    out = []
    for i, roll in enumerate(rolls):
        roll = np.asarray(roll)
        label = f"{name} #{i}" if len(rolls) > 1 else name
        if roll.ndim != 2 or roll.shape[1] != n_keys:
            raise BadInputError(f"{label}: expected shape (T, {n_keys}), got {roll.shape}")
        if roll.shape[0] < 1:
            raise BadInputError(f"{label}: no frames")
        if not np.issubdtype(roll.dtype, np.number) and roll.dtype != bool:
            raise BadInputError(f"{label}: expected numbers 0/1, got dtype {roll.dtype}")
        values = roll.astype(np.float64)
        if not np.all(np.isfinite(values)) or not np.all((values == 0) | (values == 1)):
            raise BadInputError(f"{label}: values must be 0 or 1")
        out.append(roll.astype(np.uint8))
    return out


def pad_rolls(rolls) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack rolls of different lengths: ``(rolls [shape=(B, T_max, K)], mask [shape=(B, T_max - 1)])``.

    ``mask[b, t]`` is 1 where frame t + 1 of roll b exists: the frames that are predicted and scored.
    """
    T = max(len(r) for r in rolls)
    batch = torch.zeros(len(rolls), T, rolls[0].shape[1])
    mask = torch.zeros(len(rolls), T - 1)
    for i, roll in enumerate(rolls):
        batch[i, :len(roll)] = torch.from_numpy(np.asarray(roll, dtype=np.float32))
        mask[i, :len(roll) - 1] = 1
    return batch, mask


# Shipped weights ---------------------------------------------------------------------------------

CLASSES = {"melody-rnn": (MelodyRNN, MelodyConfig), "poly-rnn": (PolyRNN, PolyConfig),
           "poly-made": (PolyRNN, PolyConfig)}


def load_pretrained(name: str = "melody-rnn", path=None) -> tuple[MelodyRNN | PolyRNN, dict]:
    """Load ``melody-rnn``, ``poly-rnn`` or ``poly-made``: the shipped weights
    (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at ``path``, checked by
    `weights.load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/04_rnn.ipynb
    """
    return weights.load_family(name, CLASSES, path)
