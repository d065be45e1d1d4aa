"""The exceptions `musiclab` raises for bad input.

Every check on user data (files, arrays, sample rates, settings) raises `BadInputError`
with a message that names the file or argument and the problem, so that a reader sees
"song.mid: not a MIDI file" instead of a traceback from deep inside a library.
"""


class MusiclabError(Exception):
    """Base class of all errors raised on purpose by `musiclab`."""


class BadInputError(MusiclabError, ValueError):
    """Input that `musiclab` cannot use: corrupt, empty, huge, silent, NaN, wrong rate, ..."""
