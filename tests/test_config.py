import pytest
import torch

from musiclab import config
from musiclab.errors import BadInputError


def test_mode_from_environment(monkeypatch):
    monkeypatch.setenv("MUSICLAB_MODE", "full")
    assert config.get_mode() == "full" and config.pick(1, 2) == 2
    monkeypatch.setenv("MUSICLAB_MODE", "Quick")
    assert config.get_mode() == "quick" and config.pick(1, 2) == 1


def test_default_mode_follows_the_gpu(monkeypatch):
    monkeypatch.delenv("MUSICLAB_MODE", raising=False)
    assert config.get_mode() == ("full" if torch.cuda.is_available() else "quick")


def test_bad_mode_names_the_variable(monkeypatch):
    monkeypatch.setenv("MUSICLAB_MODE", "fast")
    with pytest.raises(BadInputError, match="MUSICLAB_MODE='fast'"):
        config.get_mode()


def test_seed_everything_repeats_random_draws():
    config.seed_everything(3)
    first = torch.rand(3)
    config.seed_everything(3)
    assert torch.equal(first, torch.rand(3))


def test_cache_dir_is_created(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICLAB_CACHE", str(tmp_path / "c"))
    assert config.cache_dir().is_dir()
