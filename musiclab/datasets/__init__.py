"""The book's data and yours.

- `corpus`: the folk melodies and Bach chorales of the music21 corpus: parsing, caches, splits, labels.
- `batches`: windows and (context, next token) pairs cut from melodies for the models.
- `user`: the one door for your own files (``python -m musiclab train NAME --data PATH``, uploads):
  melodies, labelled melodies, piano rolls and recordings, with one set of limits and one report of
  what was skipped and why. Call it as ``datasets.user.read_melodies(...)``.

The corpus and batching functions are also reachable here (``datasets.load_folk``).

Chapter: notebooks/01_music_as_data.ipynb
"""
from . import batches, corpus, user
from .batches import GridSliceDataset, TransposedRolls, next_token_windows
from .corpus import (REGIONS, SPLITS, Chorale, Tune, build_all, build_chorales, build_folk, format_table,
                     load_chorales, load_folk, region_counts, split_of, split_ranked, summarize, unit_hash)

__all__ = ["batches", "corpus", "user", "GridSliceDataset", "TransposedRolls", "next_token_windows", "REGIONS",
           "SPLITS", "Chorale", "Tune", "build_all", "build_chorales", "build_folk", "format_table", "load_chorales", "load_folk",
           "region_counts", "split_of", "split_ranked", "summarize", "unit_hash"]
