"""The book's models, one module per family; each is a plain ``nn.Module`` built from a dataclass config.

Each family's ``load_pretrained(name, path=None)`` loads its shipped weights, or your own trained
ones, through `musiclab.weights.load_weights`.
"""
