"""A few steps of the chapter-2 next-token model through `train.fit`; run by tests/test_distributed.py
as one process, or under torchrun as several. Writes the history and the final weights' sums (rank 0).

Usage: python tests/ddp_worker.py BATCH_SIZE OUT.json
"""
import json
import sys

import torch

from musiclab import config, datasets, train
from musiclab.models.ngram import NextTokenConfig, NextTokenMLP
from musiclab.recipes.next_token import next_token_step

batch_size, out = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
config.seed_everything(0)
contexts, targets = datasets.next_token_windows(datasets.load_folk("train", progress=False)[:40], 16)
# no dropout: its random masks are drawn per process, so only a deterministic step can match exactly
model = NextTokenMLP(NextTokenConfig(hidden_dim=64, dropout=0.0))
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(contexts[:1024], targets[:1024]),
                                     batch_size=batch_size, shuffle=True, drop_last=True)
history = train.fit(model, optimizer, next_token_step(model), loader, 6, log_every=1, progress=False)
if train.is_main_process():
    with open(out, "w") as f:
        json.dump({"history": history, "world_size": train.world()[1],
                   "weights": {k: v.double().sum().item() for k, v in model.state_dict().items()}}, f)
