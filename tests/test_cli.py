"""The command line: info, data, train; bad names and bad settings get a message, not a traceback."""
import json
import os
import subprocess
import sys

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
