"""The command line: info, data, train; bad names and bad settings get a message, not a traceback."""
import json
import os
import re
import signal
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
    assert result.returncode == 2
    assert "MUSICLAB_MODE='turbo'" in result.stderr and "Traceback" not in result.stderr


def test_train_next_token_writes_weights_and_sidecar(tmp_path, capsys):
    assert cli.main(["train", "next-token", "--steps", "30", "--out", str(tmp_path)]) == 0
    sidecar = json.loads((tmp_path / "next-token.json").read_text())
    assert sidecar["command"] == f"python -m musiclab train next-token --steps 30 --out {tmp_path}"
    assert sidecar["config"]["context_len"] == 16 and sidecar["mode"] == "quick"
    assert sidecar["settings"]["steps"] == 30 and sidecar["settings"]["hidden_dim"] == 256  # the quick preset
    assert 0 < sidecar["metrics"]["valid_nll"] < 4.2  # below the uniform guess, log 63
    assert (tmp_path / "next-token.safetensors").stat().st_size > 0
    out, err = capsys.readouterr()
    # before training: the mode, its steps and what full mode takes; after the first steps: the speed
    assert "next-token: quick mode" in err and "30 steps of the small model" in err
    assert "--mode full trains 12000 steps" in err and "s per step" in err and "--mode full (12000 steps" in err
    assert out.splitlines()[-1] == f"weights: {tmp_path / 'next-token.safetensors'} (quick mode)"
    # A second run resumes from the finished checkpoint instead of starting over.
    assert cli.main(["train", "next-token", "--steps", "30", "--out", str(tmp_path)]) == 0
    assert "already trained all 30 steps" in capsys.readouterr().err


def test_help_lists_every_model_with_what_it_is_and_its_data(capsys):
    from musiclab import recipes

    with pytest.raises(SystemExit) as done:
        cli.main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name, recipe in recipes.RECIPES.items():
        assert f"  {name}" in out and recipe.about in out
        assert recipe.data.split(":")[0] in out
    assert "--restart" in out
    with pytest.raises(SystemExit):
        cli.main(["score", "--help"])
    out = capsys.readouterr().out
    assert recipes.RECIPES["poly-made"].about in out and recipes.RECIPES["gan"].about not in out


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


@pytest.mark.parametrize("name", ["next-token", "vae-melody", "melody-rnn", "transformer-melody", "poly-rnn"])
def test_train_on_your_own_melodies(name, tmp_path, monkeypatch, capsys):
    data = _melody_folder(tmp_path / "my tunes")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", name, "--steps", "2", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unusable file" in err and "broken.mid" in err
    sidecar = json.loads((tmp_path / cli.default_out(data) / f"{name}.json").read_text())  # runs/<folder>-<hash>
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
    assert cli.main(["train", "next-token", "--data", str(tmp_path / "bad"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "0 usable melody file(s) (1 skipped)" in err and "Traceback" not in err


def test_data_is_refused_by_a_recipe_that_does_not_take_it(monkeypatch, capsys):
    from musiclab import recipes

    monkeypatch.setitem(recipes.RECIPES, "no-data", recipes.Recipe(lambda out_dir, steps, command: {}, "", ""))
    assert cli.main(["train", "no-data", "--data", "somewhere"]) == 2
    assert "'no-data' does not train on your own data; these do:" in capsys.readouterr().err


# Resuming safely, and stopping ------------------------------------------------------------------------

def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_data_folders_with_the_same_name_get_their_own_runs(tmp_path, monkeypatch, capsys):
    first, second = _melody_folder(tmp_path / "a"), tmp_path / "b"
    second.mkdir()
    _melody_folder(second / "a")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "next-token", "--steps", "2", "--data", "a"]) == 0
    assert cli.main(["train", "next-token", "--steps", "2", "--data", "b/a"]) == 0
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.startswith("a-") for f in folders)
    for data in (first, second / "a"):
        sidecar = json.loads((tmp_path / cli.default_out(data) / "next-token.json").read_text())
        assert sidecar["metrics"]["steps"] == 2 and sidecar["resumed_from_step"] is None


def test_a_checkpoint_of_other_or_changed_data_is_a_named_error(tmp_path, capsys):
    data, out = _melody_folder(tmp_path / "songs"), str(tmp_path / "out")
    assert cli.main(["train", "next-token", "--steps", "2", "--data", str(data), "--out", out]) == 0
    (data / "new.abc").write_text("X:1\nT:New\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|edcB AGFE|DEFG ABcd|d4 D4|]\n")
    capsys.readouterr()
    assert cli.main(["train", "next-token", "--steps", "2", "--data", str(data), "--out", out]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{out}/next-token.pt was written by another run (data: the files in {data} changed since " \
           "(6 -> 7 files" in line
    assert line.endswith("pass --restart to start over, or --out for another folder")
    (tmp_path / "x").mkdir()
    other = _melody_folder(tmp_path / "x" / "songs")
    assert cli.main(["train", "next-token", "--steps", "2", "--data", str(other), "--out", out]) == 2
    assert f"(data: {data} -> {other})" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["train", "next-token", "--steps", "2", "--data", str(data), "--out", out, "--restart"]) == 0


def test_other_mode_steps_or_damaged_checkpoints_are_named_errors(tmp_path, capsys):
    data, out = _melody_folder(tmp_path / "songs"), tmp_path / "out"
    train = ["train", "next-token", "--data", str(data), "--out", str(out)]
    assert cli.main(train + ["--steps", "4"]) == 0
    capsys.readouterr()
    assert cli.main(train + ["--steps", "2"]) == 2  # a checkpoint further than the steps asked for
    assert "settings: steps 4 -> 2" in _one_error_line(capsys.readouterr().err)
    checkpoint = out / "next-token.pt"
    for damage in (b"garbage", None):
        if damage:
            checkpoint.write_bytes(damage)
        else:
            import torch

            torch.save({"step": 4, "history": []}, checkpoint)
        assert cli.main(train + ["--steps", "4"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {checkpoint}: ") and line.endswith("remove the file or pass --restart to "
                                                                           "start over")
    assert cli.main(train + ["--steps", "4", "--restart"]) == 0
    capsys.readouterr()
    assert cli.main(train + ["--steps", "4", "--mode", "full"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "next-token.pt was written by another run (mode: 'quick' -> 'full'" in line and "--restart" in line


def test_nan_is_never_written_and_stops_with_one_line(tmp_path, monkeypatch, capsys):
    import torch

    from musiclab import losses

    data, out = _melody_folder(tmp_path / "songs"), tmp_path / "out"
    train = ["train", "next-token", "--steps", "2", "--data", str(data), "--out", str(out)]
    assert cli.main(train) == 0
    weights = (out / "next-token.safetensors").read_bytes()
    state = torch.load(out / "next-token.pt", weights_only=True)
    state["modules"]["model"]["embed.weight"][0, 0] = float("nan")
    torch.save(state, out / "next-token.pt")
    capsys.readouterr()
    assert cli.main(train) == 2  # the run had reached --steps: it used to write NaN weights
    assert "checkpoint holds NaN or inf weights" in _one_error_line(capsys.readouterr().err)
    assert (out / "next-token.safetensors").read_bytes() == weights
    json.loads((out / "next-token.json").read_text(), parse_constant=lambda name: pytest.fail(name))

    monkeypatch.setattr(losses, "categorical_nll", lambda logits, target: logits.sum() * float("nan"))
    assert cli.main(train + ["--restart"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "training diverged" in line and "lower the learning rate" in line


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_steps_must_be_positive(steps, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["train", "next-token", "--steps", steps])
    assert done.value.code == 2 and f"--steps: {steps}: give a number of steps of at least 1" in capsys.readouterr().err


def test_out_must_not_be_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["train", "next-token", "--out", str(tmp_path / "file")]) == 2
    assert "is a file; give a folder" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("signal_number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_and_says_how_to_resume(signal_number, code, tmp_path):
    from conftest import ROOT

    command = [sys.executable, "-m", "musiclab", "train", "next-token", "--steps", "100000", "--out", "out"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # the speed line comes a few steps into training
            if "s per step" in line:
                break
        process.send_signal(signal_number)
        err = process.stderr.read()
        assert process.wait(timeout=120) == code
    finally:
        process.kill()
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"interrupted at step \d+; checkpoint saved to out/next-token.pt; run the same command "
                        r"to resume", last), err[-2000:]
    assert "Traceback" not in err and (tmp_path / "out" / "next-token.pt").exists()
