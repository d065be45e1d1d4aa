"""Trained weights: the shipped checkpoints folder, and saving / loading safetensors with a sidecar.

A model's weights are stored as ``NAME.safetensors`` (tensors only: loading never runs code) next to
``NAME.json``, the *sidecar*: the model's name (``"model": "melody-rnn"``), its config (the
``asdict`` of the model's dataclass config) and how the weights were made (command, data, metrics,
device, wall time). Every model family's ``load_pretrained`` goes through `load_weights`, which
refuses a damaged, mismatched or oversized file with one line naming the file and the problem
before it allocates the model.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct
from pathlib import Path

import torch
from torch import nn

from . import fileio
from .errors import BadInputError

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

# The largest shipped model has about 1.1 M parameters; a sidecar asking for far more is damaged or
# hostile, and is refused before any memory is allocated for it.
MAX_PARAMETERS = 20_000_000
MAX_CONFIG_INT = 1_000_000  # no size, rate or count in any config is near this
MAX_HEADER_BYTES = 10_000_000  # the JSON header of a safetensors file (names, shapes, offsets)
MAX_SIDECAR_BYTES = 50_000_000  # a sidecar with a long training history has a few hundred kB


def save_weights(path, name: str, model: nn.Module, config, meta: dict | None = None) -> Path:
    """Save ``model`` as ``path`` (.safetensors) and, as ``path`` with suffix ``.json``, its sidecar.

    The sidecar holds ``name`` (checked again when loading), ``asdict(config)``, and ``meta``: what
    anyone needs to reproduce the weights (command, data split, metrics, device, wall time). Both
    files are written atomically. Returns ``path``.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fileio.write_atomic(path, lambda tmp: save_file(tensors, str(tmp)))
    sidecar = {"model": name, "config": dataclasses.asdict(config), **(meta or {})}
    fileio.write_atomic(path.with_suffix(".json"),
                        lambda tmp: Path(tmp).write_text(json.dumps(sidecar, indent=2, default=str)))
    return path


def read_sidecar(path) -> dict:
    """The sidecar of weights file ``path`` (``NAME.json`` next to ``NAME.safetensors``) as a dict.

    Raises `BadInputError` naming the sidecar when it is missing, not JSON, not a JSON object, or
    has no ``config`` object.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    sidecar_path = Path(path).with_suffix(".json")
    if not sidecar_path.is_file():
        raise BadInputError(f"{sidecar_path}: no sidecar (the JSON file with the model name and config that "
                            "belongs next to the weights)")
    if sidecar_path.stat().st_size > MAX_SIDECAR_BYTES:
        raise BadInputError(f"{sidecar_path}: {sidecar_path.stat().st_size:,} bytes is too large for a sidecar")
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{sidecar_path}: not a JSON sidecar ({error})") from None
    if not isinstance(sidecar, dict):
        raise BadInputError(f"{sidecar_path}: expected a JSON object, got {type(sidecar).__name__}")
    if not isinstance(sidecar.get("config"), dict):
        raise BadInputError(f"{sidecar_path}: no \"config\" object (the model's settings)")
    return sidecar


def load_family(name: str, classes: dict, path=None) -> tuple[nn.Module, dict]:
    """The ``load_pretrained`` of a model family: ``classes`` maps each model name of the family to
    ``(model class, config class)``; loads the shipped ``CHECKPOINTS/NAME.safetensors`` or your own
    weights at ``path`` with `load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    if name not in classes:
        raise BadInputError(f"unknown model {name!r}; choose one of: {', '.join(classes)}")
    return load_weights(path or CHECKPOINTS / f"{name}.safetensors", name, *classes[name])


def load_weights(path, name: str, model_class, config_class) -> tuple[nn.Module, dict]:
    """Rebuild model ``name`` from a weights file and its sidecar; return ``(model in eval mode, sidecar)``.

    Every check runs before the weights are trusted, each failing with one `BadInputError` line
    naming the file: the file exists and is a safetensors file whose header tells the truth; the
    sidecar is a JSON object recording this model ``name`` and a ``config`` whose keys and value
    types are those of ``config_class``; the model that config builds has at most `MAX_PARAMETERS`
    parameters (counted without allocating them); the tensors have exactly the model's names and
    shapes, and are finite.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path}: a folder, not a weights file (.safetensors)")
    if not path.exists():
        raise BadInputError(f"{path}: no such weights file; train it with `python -m musiclab train {name}`")
    _check_header(path)
    sidecar = read_sidecar(path)
    sidecar_path = path.with_suffix(".json")
    if "model" not in sidecar:
        raise BadInputError(f"{path}: its sidecar {sidecar_path.name} records no model name (add "
                            f"\"model\": \"{name}\" to it if these are {name} weights)")
    if sidecar["model"] != name:
        raise BadInputError(f"{path}: weights of {sidecar['model']!r}, not of {name!r} (sidecar {sidecar_path.name})")
    model_config = _build_config(sidecar["config"], config_class, sidecar_path)
    with torch.device("meta"):  # count the parameters first: nothing is allocated on the meta device
        n_parameters = sum(p.numel() for p in _build_model(model_class, model_config, sidecar_path).parameters())
    if n_parameters > MAX_PARAMETERS:
        raise BadInputError(f"{sidecar_path}: its config builds {n_parameters:,} parameters, more than the "
                            f"{MAX_PARAMETERS:,} allowed (the book's largest model has about 1.1 million)")
    model = _build_model(model_class, model_config, sidecar_path)
    model.load_state_dict(_read_tensors(path, model))
    return model.eval(), sidecar


def _check_header(path: Path) -> None:
    """A safetensors file is an 8-byte little-endian header length, a JSON header, then the data."""
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path}: empty file, not safetensors weights")
    with open(path, "rb") as file:
        start = file.read(8)
        if len(start) < 8:
            raise BadInputError(f"{path}: truncated ({size} bytes), not safetensors weights")
        (header_size,) = struct.unpack("<Q", start)
        if header_size > min(size - 8, MAX_HEADER_BYTES):
            raise BadInputError(f"{path}: not safetensors weights, or truncated (its header claims "
                                f"{header_size:,} bytes in a file of {size:,})")
        try:
            header = json.loads(file.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInputError(f"{path}: not safetensors weights (unreadable header)") from None
    if not isinstance(header, dict):
        raise BadInputError(f"{path}: not safetensors weights (the header is not a JSON object)")
    data_size = size - 8 - header_size
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise BadInputError(f"{path}: truncated or damaged: tensor {key!r} lies outside the file's "
                                f"{data_size:,} bytes of data")


def _build_config(values: dict, config_class, sidecar_path: Path):
    """``config_class(**values)`` after checking names, types and sizes against the class's defaults."""
    defaults = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise BadInputError(f"{sidecar_path}: config keys {unknown} are not settings of {config_class.__name__}")
    checked = {}
    for key, value in values.items():
        default = defaults[key]
        kind = type(default)
        if kind is tuple and isinstance(value, list):  # JSON has no tuples
            value = tuple(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise BadInputError(f"{sidecar_path}: config {key}={value!r} should be a {kind.__name__}")
        if kind is int and not 0 <= value <= MAX_CONFIG_INT:
            raise BadInputError(f"{sidecar_path}: config {key}={value} is out of range (0 to {MAX_CONFIG_INT:,})")
        if kind is float and not math.isfinite(value):
            raise BadInputError(f"{sidecar_path}: config {key}={value} is not a finite number")
        checked[key] = value
    return config_class(**checked)


def _build_model(model_class, model_config, sidecar_path: Path) -> nn.Module:
    try:
        return model_class(model_config)
    except BadInputError as error:
        raise BadInputError(f"{sidecar_path}: {error}") from None
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as error:
        raise BadInputError(f"{sidecar_path}: its config does not build a {model_class.__name__} ({error})") from None


def _read_tensors(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of ``path``, their names and shapes checked against ``model``'s state before any
    is read, their values checked to be finite after."""
    from safetensors import SafetensorError, safe_open

    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as file:
            names = set(file.keys())
            missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
            if missing or unexpected:
                raise BadInputError(f"{path}: tensors do not match the model: missing {_few(missing)}, "
                                    f"unexpected {_few(unexpected)}")
            for name in sorted(names):
                shape = tuple(file.get_slice(name).get_shape())
                if shape != tuple(expected[name].shape):
                    raise BadInputError(f"{path}: tensor {name!r} has shape {shape}, the model's config "
                                        f"needs {tuple(expected[name].shape)}")
            tensors = {name: file.get_tensor(name) for name in names}
    except BadInputError:
        raise
    except (SafetensorError, OSError, ValueError) as error:
        raise BadInputError(f"{path}: not readable safetensors weights ({error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise BadInputError(f"{path}: tensor {name!r} holds NaN or infinite values")
    return tensors


def _few(names: list[str]) -> str:
    return f"{names[:5]}{' ...' if len(names) > 5 else ''}"
