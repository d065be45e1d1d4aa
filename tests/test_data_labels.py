"""--data PATH for the recipes that learn labels (mtnn, rnn-evaluator, cyclegan-symbolic): one class
per subfolder, PATH/<class>/*.mid|*.abc; loose files, unusable files and thin classes are skipped."""
import json

import numpy as np
import pytest

from musiclab import cli
from musiclab.datasets import user


def _write_class(folder, low: int, n_files: int = 3, seed: int = 0):
    """``n_files`` MIDI melodies of 48 eighth notes (6 bars) in [low, low + 7], plus one ABC tune."""
    from musiclab import symbolic
    from musiclab.symbolic import Note

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n_files):
        pitches = low + rng.integers(0, 8, 48)
        symbolic.notes_to_midi([Note(int(p), 0.5 * k, 0.5) for k, p in enumerate(pitches)], folder / f"{i}.mid")
    (folder / "jig.abc").write_text("X:1\nT:A jig\nM:6/8\nL:1/8\nK:G\n" + "GAB cde|dBG AFD|" * 4 + "]\n")


def _two_classes(root):
    _write_class(root / "airs", 55, seed=1)
    _write_class(root / "reels", 67, seed=2)
    (root / "reels" / "broken.mid").write_bytes(b"MThd garbage")
    (root / "loose.mid").write_bytes((root / "airs" / "0.mid").read_bytes())  # not in a class folder
    return root


def test_classes_come_from_the_subfolders(tmp_path, capsys):
    _two_classes(tmp_path / "styles")
    _write_class(tmp_path / "styles" / "thin", 60, n_files=0)  # one usable file (the ABC): too few
    tunes, classes, description, skipped = user.read_classes(tmp_path / "styles")
    assert classes == ["airs", "reels"]
    assert {t.region for split in tunes.values() for t in split} == {"airs", "reels"}
    for name in classes:  # every class trains and validates
        assert {t.split for t in tunes["train"] + tunes["valid"] if t.region == name} == {"train", "valid"}
    assert [name for name, _ in skipped] == ["loose.mid", "reels/broken.mid", "thin/"]
    assert "2 classes" in description and "airs 4" in description
    assert "thin/: class with 1 usable file(s)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mtnn", "rnn-evaluator", "cyclegan-symbolic"])
def test_train_on_your_labelled_melodies(name, tmp_path, capsys):
    data = _two_classes(tmp_path / "styles")
    assert cli.main(["train", name, "--steps", "2", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 unusable file(s)" in err and "reels/broken.mid" in err and "loose.mid" in err
    sidecar = json.loads((tmp_path / "out" / f"{name}.json").read_text())
    assert (tmp_path / "out" / f"{name}.safetensors").stat().st_size > 0
    assert sidecar["classes"] == ["airs", "reels"] and str(data) in sidecar["data"]
    assert [s[0] for s in sidecar["skipped"]] == ["loose.mid", "reels/broken.mid"]
    assert sidecar["metrics"]["steps"] == 2
    held_out = {k: v for k, v in sidecar["metrics"].items() if k.startswith("valid_")}  # 4 files a class: no test
    if name == "cyclegan-symbolic":
        assert (sidecar["config"]["domain_a"], sidecar["config"]["domain_b"]) == ("airs", "reels")
        assert "valid_onset_a_to_b" in held_out and not any("strength" in k for k in sidecar["metrics"])
        assert "no transfer strength" in sidecar["data"]
    else:  # the region task alone, with your classes
        assert sidecar["config"]["labels"] == {"region": ["airs", "reels"]}
        assert held_out and not any(k.startswith("test_") for k in sidecar["metrics"])


@pytest.mark.parametrize("name", ["mtnn", "rnn-evaluator", "cyclegan-symbolic"])
def test_one_usable_class_is_a_clear_error(name, tmp_path, capsys):
    data = _two_classes(tmp_path / "styles")
    for f in (data / "reels").iterdir():
        if f.name != "0.mid":
            f.unlink()  # one usable file left: the class is skipped
    assert cli.main(["train", name, "--steps", "2", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "1 usable class folder(s) ['airs']" in err and "reels/: class with 1 usable file(s)" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_cyclegan_symbolic_needs_exactly_two_domains(tmp_path, capsys):
    data = _two_classes(tmp_path / "styles")
    _write_class(data / "waltzes", 60)
    assert cli.main(["train", "cyclegan-symbolic", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "3 subfolder(s) ['airs', 'reels', 'waltzes']; exactly 2 are needed" in err
    assert "Traceback" not in err


def test_mtnn_learns_your_classes_and_scores_them_on_test_files(tmp_path):
    """12 files a class give a test file each; low vs high melodies are told apart after 60 steps."""
    _write_class(tmp_path / "styles" / "low", 55, n_files=11, seed=1)
    _write_class(tmp_path / "styles" / "high", 69, n_files=11, seed=2)
    assert cli.main(["train", "mtnn", "--steps", "60", "--data", str(tmp_path / "styles"),
                     "--out", str(tmp_path / "out")]) == 0
    sidecar = json.loads((tmp_path / "out" / "mtnn.json").read_text())
    assert "20 train, 2 valid, 2 test" in sidecar["data"] and sidecar["skipped"] == []
    report = sidecar["metrics"]["test_full_report"]["region"]
    assert report["n"] == 2 and report["accuracy"] == 1.0 and report["nll"] < 0.3  # chance: log 2 = 0.69
