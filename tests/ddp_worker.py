"""A few steps of a book model through `train.fit`; run by tests/test_distributed.py as one process, or
under torchrun as several. Every process writes the history and its final weights' sums to
OUT_PREFIX.rank<r>.json.

Usage: python tests/ddp_worker.py next-token|cyclegan BATCH_SIZE OUT_PREFIX
"""
import json
import sys

import torch

from musiclab import config, datasets, recipes, symbolic, train
from musiclab.models import cyclegan
from musiclab.models.ngram import NextTokenConfig, NextTokenMLP

name, batch_size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
config.seed_everything(0)
if name == "next-token":
    contexts, targets = datasets.next_token_windows(datasets.load_folk("train", progress=False)[:40], 16)
    # no dropout: its random masks are drawn per process, so only a deterministic step can match exactly
    model = NextTokenMLP(NextTokenConfig(hidden_dim=64, dropout=0.0))
    modules, optimizers = {"model": model}, torch.optim.AdamW(model.parameters(), lr=2e-3)
    step = recipes.next_token.next_token_step(model)
    batches = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(contexts[:1024], targets[:1024]),
                                          batch_size=batch_size, shuffle=True, drop_last=True)
else:  # the CycleGAN's generators are called as its submodules, never through a forward of its own
    model_config = cyclegan.CycleGanConfig(n_channels=symbolic.VOCAB_SIZE, hidden=16, n_blocks=1, disc_hidden=8,
                                           kind="symbolic")
    model = cyclegan.CycleGAN(model_config)
    discriminator_a, discriminator_b = cyclegan.Discriminator(model_config), cyclegan.Discriminator(model_config)
    modules = {"model": model, "discriminator_a": discriminator_a, "discriminator_b": discriminator_b}
    optimizers = {"generators": torch.optim.Adam(model.parameters(), 1e-3),
                  "discriminators": torch.optim.Adam([*discriminator_a.parameters(), *discriminator_b.parameters()],
                                                     1e-3)}
    step = recipes.cyclegan.cyclegan_step(model, discriminator_a, discriminator_b, 1.0, 0.1)
    phrases = torch.randint(0, symbolic.VOCAB_SIZE, (2, 64, 64), generator=torch.Generator().manual_seed(0)).numpy()
    batches = recipes.cyclegan.UnpairedBatches(phrases[0], phrases[1], batch_size=batch_size)
history = train.fit(modules, optimizers, step, batches, 6, log_every=1, grad_clip=None, progress=False)
rank, world_size = train.world()
with open(f"{out}.rank{rank}.json", "w") as f:
    json.dump({"history": history, "world_size": world_size,
               "weights": {k: v.double().sum().item() for k, v in model.state_dict().items()}}, f)
