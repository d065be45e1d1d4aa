"""The melody Transformer: causal multi-head self-attention over event-grid tokens.

A decoder-only Transformer (pre-LayerNorm blocks) with the same contract as `rnn.MelodyRNN`: it
reads a start token and a melody's event-grid tokens, conditioned on region and tune type, and
returns next-token logits plus a ``state``, here the key/value cache that makes generation cost one
token's work per step. Position is either absolute (sinusoidal, added to the input) or relative
(Music Transformer, Huang et al. 2018: a learned embedding per clipped distance, per head, turned
into attention logits by the "skewing" trick in O(L d) memory instead of O(L^2 d)).

The attention pieces are plain functions (`causal_mask`, `attend`, `relative_logits_naive`,
`relative_logits_skewed`) and so are the sampling filters (`filter_top_k`, `filter_top_p`), so
that each can be checked on its own. Every ``forward`` returns logits; the loss is
`losses.sequence_nll`.

Chapter: notebooks/05_transformer.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import symbolic, weights
from . import rnn
from ..errors import BadInputError

POSITIONS = ("relative", "absolute")


@dataclass
class MelodyTransformerConfig:
    """The melody Transformer's sizes, conditions and kind of position (see `MelodyTransformer`).

    Chapter: notebooks/05_transformer.ipynb
    """

    vocab_size: int = symbolic.VOCAB_SIZE  # output tokens; the input adds one start token
    regions: list = field(default_factory=list)  # condition labels; index 0 is always rnn.UNKNOWN
    tune_types: list = field(default_factory=list)
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.1
    position: str = "relative"  # or "absolute" (sinusoidal)
    max_distance: int = 256  # relative position: distances beyond this share one embedding

    @property
    def start_token(self) -> int:
        return self.vocab_size


# Attention, one function per idea --------------------------------------------------------------------


def causal_mask(n_queries: int, n_keys: int, device=None) -> torch.Tensor:
    """Which keys each query may see: bool [shape=(n_queries, n_keys)], True where allowed.

    The queries are the last ``n_queries`` of the ``n_keys`` positions (with a key/value cache the
    earlier keys come from previous calls), so query i, at position ``n_keys - n_queries + i``, sees
    keys j <= that position and never the future.

    Chapter: notebooks/05_transformer.ipynb
    """
    offset = n_keys - n_queries
    query_position = torch.arange(n_queries, device=device)[:, None] + offset
    return torch.arange(n_keys, device=device)[None, :] <= query_position


def attention_weights(q, k, relative_logits=None) -> torch.Tensor:
    """Causal scaled dot-product attention weights: softmax((Q K^T + S_rel) / sqrt(d) + mask).

    Dividing by sqrt(d) keeps the logits' variance near 1 whatever the head size d (the dot product
    of two d-vectors of independent zero-mean, unit-variance entries has variance d), so the softmax
    does not saturate into a one-hot with vanishing gradients.

    Parameters
    ----------
    q : Tensor [shape=(B, H, Lq, d)]
    k : Tensor [shape=(B, H, Lk, d)], Lk >= Lq; the queries are the last Lq positions
    relative_logits : Tensor [shape=(B, H, Lq, Lk)], optional, S_rel of `relative_logits_skewed`

    Returns
    -------
    Tensor [shape=(B, H, Lq, Lk)]: each row sums to 1 over the keys a query may see

    Chapter: notebooks/05_transformer.ipynb
    """
    logits = q @ k.transpose(-1, -2)
    if relative_logits is not None:
        logits = logits + relative_logits
    logits = logits / math.sqrt(q.shape[-1])
    if q.shape[-2] > 1:  # a single newest query may see every key: nothing to mask
        logits = logits.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    return torch.softmax(logits, -1)


def attend(q, k, v, relative_logits=None) -> torch.Tensor:
    """Causal scaled dot-product attention, `attention_weights` times V: [shape=(B, H, Lq, d)] for
    q [shape=(B, H, Lq, d)], k and v [shape=(B, H, Lk, d)].

    Computed by torch's fused kernel (`scaled_dot_product_attention`), which never stores the
    (Lq, Lk) weights for the backward pass: without relative logits it is several times faster on a
    CPU. Relative logits enter it as an additive mask, scaled as in `attention_weights`.

    Chapter: notebooks/05_transformer.ipynb
    """
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    if relative_logits is None:
        if n_queries == 1:  # the newest query may see every key
            return nn.functional.scaled_dot_product_attention(q, k, v)
        if n_queries == n_keys:
            return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(n_queries, n_keys, q.device))
    bias = relative_logits / math.sqrt(q.shape[-1])
    if n_queries > 1:
        bias = bias.masked_fill(~causal_mask(n_queries, n_keys, q.device), float("-inf"))
    return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def relative_distances(n_queries: int, n_keys: int, max_distance: int, device=None) -> torch.Tensor:
    """Distance from each query back to each key, clipped to [0, max_distance]: long [shape=(Lq, Lk)]
    (future keys get 0; the causal mask hides them).

    Chapter: notebooks/05_transformer.ipynb
    """
    query_position = torch.arange(n_queries, device=device)[:, None] + n_keys - n_queries
    return (query_position - torch.arange(n_keys, device=device)[None, :]).clamp(0, max_distance)


def relative_logits_naive(q, relative_embeddings, n_keys: int) -> torch.Tensor:
    """S_rel[b, h, i, j] = q_{b,h,i} . E_h[distance(i, j)], through an explicit relative tensor.

    Builds R_h[i, j] = E_h[clip(i - j)] [shape=(H, Lq, Lk, d)]: memory O(L^2 d), the cost that the
    skewing trick avoids (`relative_logits_skewed` returns the same numbers on and below the diagonal).

    Parameters
    ----------
    q : Tensor [shape=(B, H, Lq, d)]
    relative_embeddings : Tensor [shape=(H, max_distance + 1, d)], row m for distance m
    n_keys : int, Lk >= Lq (the queries are the last Lq positions)

    Returns
    -------
    Tensor [shape=(B, H, Lq, Lk)]

    Chapter: notebooks/05_transformer.ipynb
    """
    distances = relative_distances(q.shape[-2], n_keys, relative_embeddings.shape[1] - 1, q.device)
    relative = relative_embeddings[:, distances]  # (H, Lq, Lk, d)
    return torch.einsum("bhid,hijd->bhij", q, relative)


def skew(x: torch.Tensor) -> torch.Tensor:
    """Huang et al.'s skewing: from M[i, m] (column m = distance Lk - 1 - m) to S[i, j] = M[i, m]
    with m = Lq - 1 - i + j, i.e. the distance from query i to key j.

    Pad one zero column on the left, read the (Lq, Lk + 1) numbers row-major as rows of length Lk
    starting after the first Lq: entry (i, j) then lands on flat index Lq + i Lk + j = i (Lk + 1) + 1 + m.
    For Lq = Lk this is "pad, reshape to (L + 1, L), drop the first row". Entries above the causal
    diagonal are leftovers that the mask hides.

    x : Tensor [shape=(..., Lq, Lk)] -> Tensor [shape=(..., Lq, Lk)]

    Chapter: notebooks/05_transformer.ipynb
    """
    *batch, n_queries, n_keys = x.shape
    padded = nn.functional.pad(x, (1, 0)).reshape(*batch, n_queries * (n_keys + 1))
    return padded[..., n_queries:].reshape(*batch, n_queries, n_keys)


def relative_logits_skewed(q, relative_embeddings, n_keys: int) -> torch.Tensor:
    """The relative logits of `relative_logits_naive` in O(L d) extra memory: one product Q E^T with
    the embeddings of distances Lk - 1 .. 0, then `skew`. Same arguments and shape (B, H, Lq, Lk);
    equal to the naive logits wherever key j is not in query i's future.

    Chapter: notebooks/05_transformer.ipynb
    """
    max_distance = relative_embeddings.shape[1] - 1
    distances = (n_keys - 1 - torch.arange(n_keys, device=q.device)).clamp(max=max_distance)
    return skew(q @ relative_embeddings.index_select(1, distances).transpose(-1, -2))  # (B,H,Lq,d) @ (H,d,Lk)


def sinusoidal_positions(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Vaswani et al.'s absolute positions: sin and cos of position / 10000^(2i/d), one frequency per
    pair of dimensions. positions: long [shape=(L,)] -> Tensor [shape=(L, d_model)].

    Chapter: notebooks/05_transformer.ipynb
    """
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, device=positions.device) / d_model)
    angles = positions.float()[:, None] * frequencies[None, :]
    return torch.stack([angles.sin(), angles.cos()], -1).flatten(-2)[:, :d_model]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: H heads of size d = d_model / H attend in parallel on their
    own projections of x, and their outputs are concatenated and projected back.

    forward(x [shape=(B, L, d_model)], cache=None) -> (y [shape=(B, L, d_model)], (k, v)), where
    ``cache`` and the returned pair are the keys and values of every position so far, each
    [shape=(B, H, L_past + L, d)].

    Chapter: notebooks/05_transformer.ipynb
    """

    def __init__(self, config: MelodyTransformerConfig):
        super().__init__()
        if config.d_model % config.n_heads:
            raise BadInputError(f"d_model={config.d_model} is not a multiple of n_heads={config.n_heads}")
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        head_dim = config.d_model // config.n_heads
        self.relative_embeddings = (nn.Parameter(torch.randn(config.n_heads, config.max_distance + 1, head_dim)
                                                 / math.sqrt(head_dim)) if config.position == "relative" else None)

    def forward(self, x, cache=None):
        B, L, d_model = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        y = attend(q, k, v, self.relative_logits(q, k.shape[2]))
        return self.out(y.transpose(1, 2).reshape(B, L, d_model)), (k, v)

    def relative_logits(self, q, n_keys: int):
        """S_rel for queries q [shape=(B, H, Lq, d)] (None with absolute positions)."""
        if self.relative_embeddings is None:
            return None
        return relative_logits_skewed(q, self.relative_embeddings, n_keys)

    def weights(self, x) -> torch.Tensor:
        """What each head attends to for input x [shape=(B, L, d_model)], no cache: the
        `attention_weights` [shape=(B, H, L, L)]."""
        B, L, _ = x.shape
        q, k, _ = self.qkv(x).view(B, L, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        return attention_weights(q, k, self.relative_logits(q, L))


class Block(nn.Module):
    """Pre-LayerNorm decoder block: x + attention(LN(x)), then + MLP(LN(.)). The residual path is
    never normalised, which keeps deep stacks trainable without a warm-up-sensitive start.

    forward(x [shape=(B, L, d_model)], cache=None) -> (x [shape=(B, L, d_model)], (k, v))

    Chapter: notebooks/05_transformer.ipynb
    """

    def __init__(self, config: MelodyTransformerConfig):
        super().__init__()
        self.norm_attention, self.norm_mlp = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attention = CausalSelfAttention(config)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                 nn.Linear(config.d_ff, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None):
        y, cache = self.attention(self.norm_attention(x), cache)
        x = x + self.dropout(y)
        return x + self.dropout(self.mlp(self.norm_mlp(x))), cache


# Sampling filters: pure functions of the logits ----------------------------------------------------------


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits (ties with the k-th kept too), set the rest to -inf.
    logits: Tensor [shape=(..., K)] -> same shape.

    Chapter: notebooks/05_transformer.ipynb
    """
    threshold = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < threshold, float("-inf"))


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    probability adds up to at least ``p``, set the rest to -inf. logits: [shape=(..., K)] -> same.

    Chapter: notebooks/05_transformer.ipynb
    """
    sorted_logits, order = torch.sort(logits, -1, descending=True)
    probs = torch.softmax(sorted_logits, -1)
    mass_before = probs.cumsum(-1) - probs
    drop_sorted = mass_before >= p  # the most likely token has mass_before 0 and is always kept
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_token(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One token from softmax(logits / temperature), after `filter_top_k` and `filter_top_p` if given.
    logits: Tensor [shape=(K,)] -> long [shape=(1,)].

    Chapter: notebooks/05_transformer.ipynb
    """
    logits = logits / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    return torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=generator)


# The model ------------------------------------------------------------------------------------------------


class MelodyTransformer(nn.Module):
    """p(x_t | x_<t, region, tune type): a decoder-only Transformer over event-grid tokens.

    Input at position t: embedding of x_{t-1} + embedding of the region + embedding of the tune type
    (+ the sinusoidal position for ``position="absolute"``); the sequence starts with
    ``config.start_token``. The same contract as `rnn.MelodyRNN`.

    Parameters
    ----------
    tokens : LongTensor [shape=(B, T)], values in [0, vocab_size] (vocab_size = start)
    region, tune_type : LongTensor [shape=(B,)], indices into ``config.regions`` / ``config.tune_types``
    state : the key/value cache from a previous call (one (k, v) pair per layer), optional

    Returns
    -------
    logits : Tensor [shape=(B, T, vocab_size)], for the token *after* each input token
    state : tuple of (k, v) per layer, each [shape=(B, H, T_past + T, d)], to continue the sequence

    Chapter: notebooks/05_transformer.ipynb
    """

    def __init__(self, config: MelodyTransformerConfig):
        super().__init__()
        if config.position not in POSITIONS:
            raise BadInputError(f"position={config.position!r}: expected one of {POSITIONS}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size + 1, config.d_model)
        self.embed_region = nn.Embedding(max(len(config.regions), 1), config.d_model)
        self.embed_tune_type = nn.Embedding(max(len(config.tune_types), 1), config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)

    def forward(self, tokens, region, tune_type, state=None):
        n_past = 0 if state is None else state[0][0].shape[2]
        x = self.embed(tokens) + (self.embed_region(region) + self.embed_tune_type(tune_type))[:, None]
        if self.config.position == "absolute":
            positions = torch.arange(n_past, n_past + tokens.shape[1], device=tokens.device)
            x = x + sinusoidal_positions(positions, self.config.d_model)
        x = self.dropout(x)
        caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, None if state is None else state[i])
            caches.append(cache)
        return self.head(self.norm(x)), tuple(caches)

    def condition_index(self, region: str | None = None, tune_type: str | None = None) -> tuple[int, int]:
        """The indices of a region and a tune type (None or an unseen label -> UNKNOWN)."""
        def index(labels, label):
            return labels.index(label) if label in labels else 0
        return index(self.config.regions, region), index(self.config.tune_types, tune_type)

    @torch.inference_mode()  # lighter than no_grad: no version counters, a step costs about 20 % less
    def generate(self, n_steps: int, prime=None, region: str | None = None, tune_type: str | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> np.ndarray:
        """Sample ``n_steps`` tokens after ``prime`` (event-grid tokens, may be empty or None) with
        `sample_token`. With ``use_cache`` each step feeds only the newest token and attends to the
        cached keys and values; without, each step reruns the whole sequence (same numbers, O(T^2)
        more work). Returns the new tokens only, int64 [shape=(n_steps,)].
        """
        prime = rnn.check_sampling_args(self.config.vocab_size, temperature, top_k, top_p, prime)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        condition = [torch.tensor([i], device=device) for i in self.condition_index(region, tune_type)]
        tokens = torch.tensor([[self.config.start_token, *prime.tolist()]], device=device)
        logits, state = self(tokens, *condition)
        out = torch.empty(n_steps, dtype=torch.long)
        for i in range(n_steps):
            out[i] = sample_token(logits[0, -1], temperature, top_k, top_p, generator)
            if use_cache:
                logits, state = self(out[i:i + 1].to(device)[None], *condition, state)
            else:
                tokens = torch.cat([tokens, out[i:i + 1].to(device)[None]], 1)
                logits, _ = self(tokens, *condition)
        self.train(was_training)
        return out.numpy()


@torch.no_grad()
def attention_maps(model: MelodyTransformer, tokens, region, tune_type) -> torch.Tensor:
    """Every layer's and head's attention weights over one sequence: the inputs of each attention
    layer are caught on a forward pass and turned into `CausalSelfAttention.weights`.

    Parameters
    ----------
    tokens : LongTensor [shape=(1, L)], start token first (as in training)
    region, tune_type : LongTensor [shape=(1,)]

    Returns
    -------
    Tensor [shape=(n_layers, H, L, L)]: row i is what position i (predicting token i + 1) looks at

    Chapter: notebooks/05_transformer.ipynb
    """
    inputs = []
    hooks = [block.attention.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
             for block in model.blocks]
    was_training = model.training
    model.eval()
    try:
        model(tokens, region, tune_type)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return torch.cat([block.attention.weights(x) for block, x in zip(model.blocks, inputs)])


# Shipped weights ---------------------------------------------------------------------------------------

CLASSES = {"transformer-melody": (MelodyTransformer, MelodyTransformerConfig)}


def load_pretrained(name: str = "transformer-melody", path=None) -> tuple[MelodyTransformer, dict]:
    """Load ``transformer-melody``: the shipped weights (``musiclab/checkpoints/NAME.safetensors``)
    or your own trained ones at ``path``, checked by `weights.load_weights`. Returns
    ``(model in eval mode, sidecar)``.

    Chapter: notebooks/05_transformer.ipynb
    """
    return weights.load_family(name, CLASSES, path)


# The chorale Transformer ------------------------------------------------------------------------------


@dataclass
class ChoraleTransformerConfig:
    """The chorale Transformer's sizes (see `ChoraleTransformer`): the attention stack's fields are
    those of `MelodyTransformerConfig`, the output's those of `rnn.PolyConfig`.

    Chapter: notebooks/05_transformer.ipynb
    """

    n_keys: int = 88
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.2
    position: str = "relative"  # or "absolute" (sinusoidal)
    max_distance: int = 64  # frames (quarter notes): 16 bars of 4/4; further back shares one embedding
    output: str = "made"  # or "independent"
    made_dim: int = 512


class ChoraleTransformer(rnn.PianoRollModel):
    """p(v_t | v_<t) over piano-roll frames: the melody Transformer's causal attention blocks over
    the frames, then poly-made's output (`rnn.PianoRollModel`), autoregressive within each frame.

    Frame v_{t-1} enters as a linear embedding W v_{t-1} (the sum of its sounding keys' vectors);
    ``n_layers`` `Block`s with relative (or absolute) position attend to the frames so far and give
    h_t; the MADE head turns h_t and the keys below k into the log-odds of key k of frame t. Only
    the summary of the past differs from poly-made's LSTM, so the two NLLs compare the two ways of
    reading the past.

    Parameters
    ----------
    roll : Tensor [shape=(B, T, n_keys)], 0/1 frames v_0 .. v_{T-1}

    Returns
    -------
    logits : Tensor [shape=(B, T - 1, n_keys)], the log-odds of frames v_1 .. v_{T-1}, each key's
        given the true keys below it (teacher forcing within the frame); the loss is
        `losses.pianoroll_nll`, the score `metrics.score_rolls`, as for poly-made

    Chapter: notebooks/05_transformer.ipynb
    """

    def __init__(self, config: ChoraleTransformerConfig):
        if config.position not in POSITIONS:
            raise BadInputError(f"position={config.position!r}: expected one of {POSITIONS}")
        super().__init__(config, config.d_model)
        self.embed = nn.Linear(config.n_keys, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)

    def summarise(self, roll, state=None):
        """h_t for each next frame [shape=(B, T, d_model)] from frames [shape=(B, T, n_keys)], and the
        key/value cache (one (k, v) per layer) to continue from: ``generate`` feeds one frame a step."""
        n_past = 0 if state is None else state[0][0].shape[2]
        x = self.embed(roll.float())
        if self.config.position == "absolute":
            x = x + sinusoidal_positions(torch.arange(n_past, n_past + roll.shape[1], device=roll.device),
                                         self.config.d_model)
        x = self.dropout(x)
        caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, None if state is None else state[i])
            caches.append(cache)
        return self.norm(x), tuple(caches)


CLASSES["transformer-chorale"] = (ChoraleTransformer, ChoraleTransformerConfig)
