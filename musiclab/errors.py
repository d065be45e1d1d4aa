"""The exceptions `musiclab` raises for bad input.

Every check on user data (files, arrays, sample rates, settings) raises `BadInputError`
with a message that names the file or argument and the problem, so that a reader sees
"song.mid: not a MIDI file" instead of a traceback from deep inside a library.
"""


class MusiclabError(Exception):
    """Base class of all errors raised on purpose by `musiclab`."""


class BadInputError(MusiclabError, ValueError):
    """Input that `musiclab` cannot use: corrupt, empty, huge, silent, NaN, wrong rate, ..."""


class CheckpointError(BadInputError):
    """A training checkpoint that cannot be resumed: damaged, of another model, or written for other
    data or settings. The message names the file and says how to start over."""


class TrainingDivergedError(MusiclabError, FloatingPointError):
    """The loss or the weights became NaN or infinite; nothing non-finite is ever saved."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT) or SIGTERM after saving its checkpoint.

    ``step`` is the last finished step, ``checkpoint_path`` the file to resume from (None when the
    run had none), ``signal_number`` the signal that stopped it.
    """

    def __init__(self, step: int, checkpoint_path, signal_number: int):
        self.step, self.checkpoint_path, self.signal_number = step, checkpoint_path, signal_number
        where = (f"checkpoint saved to {checkpoint_path}; run the same command to resume" if checkpoint_path
                 else "no checkpoint (no checkpoint path was given)")
        super().__init__(f"interrupted at step {step}; {where}")
