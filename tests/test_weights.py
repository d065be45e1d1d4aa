"""Saving and loading weights (`musiclab.weights`): a round trip, the shipped checkpoints, and one clear
error (exit code 2 on the command line) for every way a weights file or its sidecar can be wrong."""
import json
import math
import struct

import numpy as np
import pytest
import torch

from musiclab import cli, weights
from musiclab.errors import BadInputError
from musiclab.models import audio_rnn, cyclegan, ddsp, diffusion, gan, mtnn, ngram, rnn, transformer, vae, vocoder

TINY = rnn.PolyConfig(hidden_dim=4, dropout=0.0, made_dim=8)


@pytest.fixture
def saved(tmp_path):
    """A tiny poly-rnn saved with its sidecar; returns the weights path."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    weights.save_weights(path, "poly-rnn", rnn.PolyRNN(TINY), TINY, {"command": "python -m musiclab train poly-rnn"})
    return path


def _edit_sidecar(path, change):
    sidecar_path = path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    change(sidecar)
    sidecar_path.write_text(json.dumps(sidecar))


def _resave_tensors(path, change):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def test_round_trip_keeps_outputs_config_and_provenance(saved):
    model, sidecar = weights.load_weights(saved, "poly-rnn", rnn.PolyRNN, rnn.PolyConfig)
    torch.manual_seed(0)
    original = rnn.PolyRNN(TINY)  # the same seed rebuilds the saved weights independently of the file
    rolls = torch.randint(0, 2, (2, 5, 88)).float()
    torch.testing.assert_close(model(rolls), original.eval()(rolls))
    assert sidecar["model"] == "poly-rnn" and sidecar["config"]["hidden_dim"] == 4
    assert sidecar["command"] == "python -m musiclab train poly-rnn" and not model.training
    assert weights.read_sidecar(saved) == sidecar


def test_tuples_in_a_config_come_back_as_tuples(tmp_path):
    config = gan.GanConfig(programs=(0,), pitches=(60,), width=4)
    weights.save_weights(tmp_path / "g.safetensors", "gan", gan.Generator(config), config)
    generator, _ = gan.load_pretrained(path=tmp_path / "g.safetensors")
    assert generator.config.programs == (0,) and generator.config.pitches == (60,)


@pytest.mark.parametrize("load, names", [
    (rnn.load_pretrained, ["melody-rnn", "poly-rnn", "poly-made"]),
    (audio_rnn.load_pretrained, ["audio-rnn", "audio-rnn-mse"]),
    (vae.load_pretrained, ["vae-melody", "vae-timbre"]),
    (gan.load_pretrained, ["gan", "recording-gan"]),
    (cyclegan.load_pretrained, ["cyclegan-timbre", "cyclegan-symbolic"]),
    (transformer.load_pretrained, ["transformer-melody", "transformer-chorale"]),
    (diffusion.load_pretrained, ["diffusion"]),
    (ddsp.load_pretrained, ["ddsp-clarinet", "ddsp-violin"]),
    (vocoder.load_pretrained, ["vocoder"]),
])
def test_every_shipped_checkpoint_loads_under_its_name(load, names):
    for name in names:
        model, sidecar = load(name)
        assert sidecar["model"] == name and sidecar["config"] and not model.training
        # the sidecar's config is the model's, field by field
        rebuilt = json.loads(json.dumps(sidecar["config"]))
        assert all(list(v) == rebuilt[k] if isinstance(v, tuple) else v == rebuilt[k]
                   for k, v in vars(model.config).items())


def test_every_shipped_sidecar_names_its_model():
    sidecars = sorted(weights.CHECKPOINTS.glob("*.json"))
    assert len(sidecars) >= 13
    for path in sidecars:
        assert json.loads(path.read_text())["model"] == path.stem
    assert isinstance(mtnn.load_pretrained("mtnn"), mtnn.MultiTaskNet)
    assert isinstance(mtnn.load_pretrained("rnn-evaluator"), mtnn.RNNEvaluator)


def test_an_unknown_name_is_refused():
    with pytest.raises(BadInputError, match="unknown model 'poly-gan'"):
        rnn.load_pretrained("poly-gan")
    with pytest.raises(BadInputError, match="unknown model 'vae'"):
        vae.load_pretrained("vae")


# Damaged and mismatched files: each one a named, one-line error ---------------------------------------


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _lying_header(path):
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 10 ** 12) + data[8:])


def _unreadable_header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[:8] + b"\xff" * n + data[8 + n:])


def _grow(path, n_bytes):
    with open(path, "r+b") as file:
        file.truncate(n_bytes)  # sparse: takes no disk space


def _poly_made_weights(path):
    made = rnn.PolyConfig(hidden_dim=4, dropout=0.0, made_dim=8, output="made")
    weights.save_weights(path, "poly-made", rnn.PolyRNN(made), made)


DAMAGE = {
    "folder": (lambda p: (p.unlink(), p.mkdir()), "a folder, not a weights file"),
    "missing": (lambda p: p.unlink(), "no such weights file"),
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "a few bytes": (lambda p: p.write_bytes(b"abc"), r"truncated \(3 bytes\)"),
    "truncated": (_truncate, "truncated"),
    "lying header": (_lying_header, "header claims 1,000,000,000,000 bytes"),
    "unreadable header": (_unreadable_header, "unreadable header"),
    "garbage": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not safetensors weights"),
    "no sidecar": (lambda p: p.with_suffix(".json").unlink(), "no sidecar"),
    "garbage sidecar": (lambda p: p.with_suffix(".json").write_text("{not json"), "not a JSON sidecar"),
    "null sidecar": (lambda p: p.with_suffix(".json").write_text("null"), "expected a JSON object, got NoneType"),
    "list sidecar": (lambda p: p.with_suffix(".json").write_text("[1, 2]"), "expected a JSON object, got list"),
    "huge sidecar": (lambda p: _grow(p.with_suffix(".json"), weights.MAX_SIDECAR_BYTES + 1),
                     "50,000,001 bytes is too large for a sidecar"),
    "no config": (lambda p: _edit_sidecar(p, lambda s: s.pop("config")), 'no "config" object'),
    "config not an object": (lambda p: _edit_sidecar(p, lambda s: s.update(config=[4])), 'no "config" object'),
    "unknown key": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(layers=3)),
                    r"config keys \['layers'\] are not settings of PolyConfig"),
    "wrong type": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(hidden_dim="4")),
                   "config hidden_dim='4' should be a int"),
    "bool for int": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(n_layers=True)),
                     "config n_layers=True should be a int"),
    "negative size": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(n_keys=-1)),
                      "config n_keys=-1 is out of range"),
    "huge size": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(n_keys=10 ** 9)),
                  "config n_keys=1000000000 is out of range"),
    "bad value": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(output="gaussian")),
                  "does not build a PolyRNN|output"),
    "no model name": (lambda p: _edit_sidecar(p, lambda s: s.pop("model")),
                      r'records no model name \(add "model": "poly-rnn"'),
    "another model": (_poly_made_weights, "weights of 'poly-made', not of 'poly-rnn'"),
    "missing tensor": (lambda p: _resave_tensors(p, lambda t: t.pop("key_bias.weight")),
                       r"missing \['key_bias.weight'\]"),
    "extra tensor": (lambda p: _resave_tensors(p, lambda t: t.update(extra=torch.zeros(1))),
                     r"unexpected \['extra'\]"),
    "wrong shape": (lambda p: _edit_sidecar(p, lambda s: s["config"].update(hidden_dim=5)),
                    "has shape .* the model's config needs"),
    "NaN": (lambda p: _resave_tensors(p, lambda t: t["key_bias.weight"].__setitem__((0, 0), math.nan)),
            "'key_bias.weight' holds NaN or infinite values"),
    "Inf": (lambda p: _resave_tensors(p, lambda t: t["key_bias.bias"].__setitem__(0, math.inf)),
            "'key_bias.bias' holds NaN or infinite values"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_or_mismatched_file_is_one_named_error(saved, damage):
    change, message = DAMAGE[damage]
    change(saved)
    with pytest.raises(BadInputError, match=message) as error:
        weights.load_weights(saved, "poly-rnn", rnn.PolyRNN, rnn.PolyConfig)
    assert "\n" not in str(error.value) and saved.stem in str(error.value)


@pytest.mark.parametrize("damage", ["truncated", "null sidecar", "wrong type", "another model", "NaN", "folder"])
def test_score_command_exits_2_with_one_line(saved, tmp_path, capsys, damage):
    rolls = tmp_path / "rolls.npz"
    np.savez(rolls, a=np.eye(88, dtype=np.uint8)[:4])
    assert cli.main(["score", "poly-rnn", str(rolls), "--weights", str(saved)]) == 0
    capsys.readouterr()
    change, message = DAMAGE[damage]
    change(saved)
    assert cli.main(["score", "poly-rnn", str(rolls), "--weights", str(saved)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(saved.stem) in err
    assert err.startswith("error: ")


def test_a_huge_config_is_refused_before_any_memory_is_allocated(saved):
    """A hidden size of 40,000 would take about 25 GB; the parameters are counted on the meta device."""
    _edit_sidecar(saved, lambda s: s["config"].update(hidden_dim=40_000))
    devices = []

    class Spy(rnn.PolyRNN):
        def __init__(self, config):
            super().__init__(config)
            devices.append(next(self.parameters()).device.type)

    with pytest.raises(BadInputError, match=r"builds [\d,]+ parameters, more than the 20,000,000 allowed"):
        weights.load_weights(saved, "poly-rnn", Spy, rnn.PolyConfig)
    assert devices == ["meta"]
    # the same config within bounds is built for real
    _edit_sidecar(saved, lambda s: s["config"].update(hidden_dim=4))
    weights.load_weights(saved, "poly-rnn", Spy, rnn.PolyConfig)
    assert devices == ["meta", "meta", "cpu"]


def test_weights_of_a_model_without_shipped_weights_load_by_name(tmp_path):
    config = ngram.NextTokenConfig(vocab_size=5, context_len=3, embed_dim=4, hidden_dim=8)
    weights.save_weights(tmp_path / "next-token.safetensors", "next-token", ngram.NextTokenMLP(config), config)
    model, sidecar = weights.load_weights(tmp_path / "next-token.safetensors", "next-token", ngram.NextTokenMLP,
                                          ngram.NextTokenConfig)
    assert model.config == config and sidecar["model"] == "next-token"
