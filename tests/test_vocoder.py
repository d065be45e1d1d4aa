"""The mel vocoder: the inverse-STFT head is exact, shapes and size, aligned training windows, bad input,
the recipe and exact resuming."""
import signal

import numpy as np
import pytest
import torch

from musiclab import audio, recipes, symbolic, train
from musiclab.errors import BadInputError, TrainingInterrupted
from musiclab.models import vocoder

SR, N_FFT, HOP = 16000, 1024, 256


def test_istft_head_rebuilds_a_signal_from_its_own_magnitude_and_phase():
    y = torch.randn(2, HOP * 40, generator=torch.Generator().manual_seed(0))
    spectrum = torch.stft(y, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True)
    rebuilt = vocoder.spectrum_to_audio(spectrum.abs(), spectrum.angle(), N_FFT, HOP)
    assert rebuilt.shape == y.shape
    torch.testing.assert_close(rebuilt, y, rtol=0, atol=1e-5)
    # the magnitude alone is not enough: zero phase gives another signal (Griffin-Lim's problem)
    assert (vocoder.spectrum_to_audio(spectrum.abs(), torch.zeros_like(spectrum.abs()), N_FFT, HOP) - y).abs().max() > 0.5


def test_vocoder_shapes_and_size():
    config = vocoder.VocoderConfig()
    model = vocoder.Vocoder(config)
    assert sum(p.numel() for p in model.parameters()) * 4 < 10_000_000  # float32 weights under 10 MB
    log_mel = torch.full((2, config.n_mels, 17), -6.0)
    magnitude, phase = model.spectrum(log_mel)
    assert magnitude.shape == phase.shape == (2, N_FFT // 2 + 1, 17) and (magnitude > 0).all()
    assert model(log_mel).shape == (2, HOP * 16)
    y = audio.render_notes([symbolic.Note(69, 0, 1)], program=0)
    x = vocoder.log_mel(y, config)
    assert x.shape == (80, 1 + len(y) // HOP)
    assert vocoder.log_mel_to_audio(model.eval(), x).shape == (HOP * (x.shape[1] - 1),)


def test_training_windows_pair_each_log_mel_window_with_its_audio():
    config = vocoder.VocoderConfig()
    y = np.random.default_rng(0).normal(0, 0.1, HOP * 60).astype(np.float32)
    [clip] = recipes.synthesis.vocoder_clips([y], config)
    assert len(clip["y"]) == HOP * (clip["log_mel"].shape[1] - 1)
    batches = recipes.synthesis.SegmentBatches([clip], 12, HOP, batch_size=3, vocoder=True, batches_per_pass=1)
    batch = next(iter(batches))
    assert batch["log_mel"].shape == (3, 80, 12) and batch["y"].shape == (3, HOP * 11)
    for window, audio_window in zip(batch["log_mel"].numpy(), batch["y"].numpy()):
        own = vocoder.log_mel(audio_window, config)  # the window's own frames, away from its edges
        np.testing.assert_allclose(own[:, 2:-3], window[:, 2:-3], atol=1e-4)


@pytest.mark.parametrize("log_mel, match", [
    (np.full((64, 10), -5.0), r"shape=\(80, T\)"),
    (np.full((80, 1), -5.0), "T >= 2"),
    (np.where(np.arange(10) == 3, np.nan, np.full((80, 10), -5.0)), "NaN"),
    (np.full((80, 10), np.log(audio.LOG_FLOOR)), "silent"),
])
def test_bad_log_mels_are_refused(log_mel, match):
    with pytest.raises(BadInputError, match=match):
        vocoder.check_log_mel(log_mel, vocoder.VocoderConfig())


@pytest.fixture(scope="module")
def small_vocoder():
    torch.manual_seed(0)
    return vocoder.Vocoder(vocoder.VocoderConfig(dim=16, n_blocks=1)).eval()


@pytest.fixture(scope="module")
def piano():
    return audio.render_notes([symbolic.Note(60, 0, 1), symbolic.Note(64, 1, 1)], program=0)


def test_vocode_returns_audio_of_the_input_length(small_vocoder, piano):
    y = recipes.synthesis.vocode(small_vocoder, piano, SR)
    assert y.shape == piano.shape and np.isfinite(y).all()


@pytest.mark.parametrize("make, sr, match", [
    (lambda y: np.zeros_like(y), SR, "silent"),
    (lambda y: np.random.default_rng(0).uniform(-0.5, 0.5, len(y)).astype(np.float32), SR, "noise only"),
    (lambda y: np.clip(4 * y / np.abs(y).max(), -0.9, 0.9), SR, "clipped"),
    (lambda y: y, 44100, "expected 16000 Hz, got 44100 Hz"),
    (lambda y: y[:2000], SR, "too short"),
    (lambda y: np.where(np.arange(len(y)) == 100, np.inf, y), SR, "NaN or infinite"),
])
def test_vocode_refuses_bad_input_by_name(small_vocoder, piano, make, sr, match):
    with pytest.raises(BadInputError, match=match) as error:
        recipes.synthesis.vocode(small_vocoder, make(piano), sr, name="take2.wav")
    assert str(error.value).startswith("take2.wav")


def test_vocoder_recipe_writes_loadable_weights_and_scores_griffin_lim(tmp_path):
    result = recipes.synthesis.train_vocoder(out_dir=tmp_path, steps=2, command="test", progress=False)
    model, sidecar = vocoder.load_pretrained(path=tmp_path / "vocoder.safetensors")
    assert sidecar["command"] == "test" and sidecar["metrics"]["steps"] == 2
    assert result["test_lsd_griffin_lim"] > 0 and result["test_lsd_vocoder"] > 0
    assert model.config.n_mels == 80



def test_vocoder_recipe_trains_on_recordings_and_skips_bad_files(tmp_path):
    y = audio.render_notes([symbolic.Note(p, i, 1) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)],
                           program=0)
    audio.save_audio(tmp_path / "piano.wav", 0.8 * y / np.abs(y).max(), SR)
    audio.save_audio(tmp_path / "short.wav", 0.8 * y[:SR] / np.abs(y).max(), SR)  # 1 s: less than the 2 s needed
    recipes.synthesis.train_vocoder(out_dir=tmp_path / "out", steps=1, progress=False, data=str(tmp_path))
    _, sidecar = vocoder.load_pretrained(path=tmp_path / "out" / "vocoder.safetensors")
    assert "your recordings" in sidecar["data"] and [name for name, _ in sidecar["skipped_files"]] == ["short.wav"]

def _vocoder_run(init_seed: int):
    torch.manual_seed(init_seed)
    config = vocoder.VocoderConfig(dim=8, n_blocks=1)
    model = vocoder.Vocoder(config)
    clips = recipes.synthesis.vocoder_clips(
        [np.random.default_rng(i).normal(0, 0.1, HOP * 30).astype(np.float32) for i in range(3)], config)
    batches = recipes.synthesis.SegmentBatches(clips, 8, HOP, batch_size=2, vocoder=True, batches_per_pass=5)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2), recipes.synthesis.vocoder_step(model), batches


def test_interrupted_vocoder_run_resumes_exactly(tmp_path):
    model, optimizer, step, batches = _vocoder_run(0)
    train.fit(model, optimizer, step, batches, 12, progress=False)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def stopping_step(batch, update):
        calls.append(1)
        if len(calls) == 7:
            signal.raise_signal(signal.SIGINT)
        return step(batch, update)

    path = tmp_path / "run.pt"
    model, optimizer, step, batches = _vocoder_run(0)
    with pytest.raises(TrainingInterrupted):
        train.fit(model, optimizer, stopping_step, batches, 12, checkpoint_path=path, progress=False)
    model, optimizer, step, batches = _vocoder_run(3)
    assert train.fit(model, optimizer, step, batches, 12, checkpoint_path=path, progress=False).resumed_from == 7
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6, msg=key)


def test_shipped_vocoder_beats_griffin_lim_on_a_held_out_note():
    model, sidecar = vocoder.load_pretrained()
    assert sidecar["mode"] == "full" and sidecar["metrics"]["test_lsd_vocoder"] < sidecar["metrics"]["test_lsd_griffin_lim"]
    y = audio.render_note(66, program=40, velocity=77, duration_s=0.6, release_s=0.4)  # not among its training notes
    x = vocoder.log_mel(y, model.config)
    by_vocoder = recipes.synthesis.spectral_lsd_db(vocoder.log_mel_to_audio(model, x), y)
    by_griffin_lim = recipes.synthesis.spectral_lsd_db(audio.mel_to_audio(x, SR, inverse="pinv"), y)
    assert by_vocoder < 0.9 * by_griffin_lim
