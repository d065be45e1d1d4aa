"""The command line: info, data, train; bad names and bad settings get a message, not a traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musiclab import cli


def test_info_prints_mode_and_device(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "mode: quick" in out and "device:" in out


def test_unknown_model_lists_the_choices(capsys):
    assert cli.main(["train", "no-such-model"]) == 2
    assert "next-token" in capsys.readouterr().err


def test_bad_mode_is_a_message_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "musiclab", "info"], capture_output=True, text=True,
                            env={**os.environ, "MUSICLAB_MODE": "turbo"})
    assert result.returncode == 1
    assert "MUSICLAB_MODE='turbo'" in result.stderr and "Traceback" not in result.stderr


def test_train_next_token_writes_weights_and_sidecar(tmp_path, capsys):
    assert cli.main(["train", "next-token", "--steps", "30", "--out", str(tmp_path)]) == 0
    sidecar = json.loads((tmp_path / "next-token.json").read_text())
    assert sidecar["command"] == f"python -m musiclab train next-token --steps 30 --out {tmp_path}"
    assert sidecar["config"]["context_len"] == 16 and sidecar["mode"] == "quick"
    assert 0 < sidecar["metrics"]["valid_nll"] < 4.2  # below the uniform guess, log 63
    assert (tmp_path / "next-token.safetensors").stat().st_size > 0
    # A second run resumes from the finished checkpoint instead of starting over.
    assert cli.main(["train", "next-token", "--steps", "30", "--out", str(tmp_path)]) == 0


# Your own data: --data PATH -------------------------------------------------------------------------

def _melody_folder(folder):
    from musiclab import symbolic
    from musiclab.symbolic import Note

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        pitches = 60 + rng.integers(0, 12, 32)
        symbolic.notes_to_midi([Note(int(p), 0.5 * k, 0.5) for k, p in enumerate(pitches)], folder / f"tune{i}.mid")
    (folder / "jig.abc").write_text("X:1\nT:A jig\nM:6/8\nL:1/8\nK:G\nGAB cde|dBG AFD|GAB cde|dBG G3|]\n")
    (folder / "broken.mid").write_bytes(b"MThd garbage")
    return folder


def _recording_folder(folder):
    from musiclab import audio
    from musiclab.symbolic import Note

    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, program in enumerate((73, 40)):  # 6 s each: a recording must be at least 5 s
        notes = [Note(int(p), 0.5 * k, 0.5) for k, p in enumerate(60 + rng.integers(0, 12, 24))]
        audio.save_audio(folder / f"take{i}.wav", 0.5 * audio.render_notes(notes, program=program), audio.DEFAULT_SR)
    (folder / "notes.wav").write_text("a text file with a .wav name")
    return folder


@pytest.mark.parametrize("name", ["next-token", "vae-melody", "melody-rnn", "poly-rnn"])
def test_train_on_your_own_melodies(name, tmp_path, monkeypatch, capsys):
    data = _melody_folder(tmp_path / "my tunes")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", name, "--steps", "2", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unusable file" in err and "broken.mid" in err
    sidecar = json.loads((tmp_path / "runs" / "my tunes" / f"{name}.json").read_text())  # runs/<data folder>
    assert str(data) in sidecar["data"] and sidecar["skipped"][0][0] == "broken.mid"
    assert sidecar["metrics"]["steps"] == 2 and "processes" not in sidecar


@pytest.mark.parametrize("name", ["audio-rnn", "vae-timbre"])
def test_train_on_your_own_recordings(name, tmp_path, capsys):
    data = _recording_folder(tmp_path / "takes")
    assert cli.main(["train", name, "--steps", "2", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    assert "notes.wav: not a readable audio file" in capsys.readouterr().err
    sidecar = json.loads((tmp_path / "out" / f"{name}.json").read_text())
    assert "2 files" in sidecar["data"] and sidecar["skipped"] == [["notes.wav", sidecar["skipped"][0][1]]]
    held_out = {k: v for k, v in sidecar["metrics"].items() if k.startswith(("held_out", "valid"))}
    assert held_out and all(np.isfinite(v) for v in held_out.values())


def test_gan_on_your_own_recordings_is_the_single_condition_gan(tmp_path):
    data = _recording_folder(tmp_path / "takes")
    assert cli.main(["train", "gan", "--steps", "2", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    sidecar = json.loads((tmp_path / "out" / "recording-gan.json").read_text())
    assert sidecar["config"]["programs"] == [0] and sidecar["metrics"]["n_slices"] > 0
    assert [Path(name).name for name, _ in sidecar["skipped"]] == ["notes.wav"]


def test_own_data_with_nothing_usable_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.mid").write_bytes(b"MThd garbage")
    assert cli.main(["train", "next-token", "--data", str(tmp_path / "bad"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "0 usable melody file(s) (1 skipped)" in err and "Traceback" not in err


def test_data_is_refused_by_a_recipe_that_does_not_take_it(monkeypatch, capsys):
    from musiclab import recipes

    monkeypatch.setitem(recipes.RECIPES, "no-data", lambda out_dir, steps, command: {})
    assert cli.main(["train", "no-data", "--data", "somewhere"]) == 2
    assert "'no-data' does not train on your own data; these do:" in capsys.readouterr().err
