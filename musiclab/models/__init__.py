"""The book's models, one module per family; each is a plain ``nn.Module`` built from a dataclass config."""
