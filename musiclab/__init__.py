"""musiclab: the helper package of the book *Deep Learning for Computer Music*.

Import the submodules you need, e.g. ``from musiclab import audio, datasets, losses``.
"""
__version__ = "0.1.0"
