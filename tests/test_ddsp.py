"""DDSP: the synthesisers against NumPy, no aliasing, the decoder's shapes, the multi-scale spectral loss,
the pitch and loudness features, bad input to timbre transfer, the recipe and exact resuming."""
import math
import signal

import librosa
import numpy as np
import pytest
import torch

from musiclab import audio, losses, recipes, symbolic, train
from musiclab.errors import BadInputError, TrainingInterrupted
from musiclab.models import ddsp

SR, HOP = 16000, 128


# Synthesisers ---------------------------------------------------------------------------------------------


def test_upsampled_controls_hit_every_frame_at_its_sample():
    x = torch.tensor([[[0.0], [1.0], [3.0]]]).transpose(1, 2)  # (B=1, C=1, T=3)
    up = ddsp.upsample_frames(x, 4)
    assert up.shape == (1, 1, 12)
    assert up[0, 0, ::4].tolist() == [0.0, 1.0, 3.0]
    assert up[0, 0, 1:4].tolist() == [0.25, 0.5, 0.75] and up[0, 0, -3:].tolist() == [3.0, 3.0, 3.0]


def test_oscillator_bank_is_a_sum_of_sines():
    f0 = torch.full((1, 40), 220.0)
    amplitudes = torch.zeros(1, 40, 8)
    amplitudes[..., 0], amplitudes[..., 2], amplitudes[..., 7] = 0.5, 0.25, 0.1
    y = ddsp.harmonic_synth(f0, amplitudes, SR, HOP)[0].numpy()
    n = np.arange(40 * HOP)
    expected = sum(a * np.sin(2 * np.pi * k * 220 * n / SR) for k, a in ((1, 0.5), (3, 0.25), (8, 0.1)))
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_oscillator_follows_a_glide_with_the_integrated_phase():
    f0 = torch.linspace(200.0, 400.0, 30)[None]
    y = ddsp.harmonic_synth(f0, torch.ones(1, 30, 1), SR, HOP)[0].numpy().astype(np.float64)
    f0_samples = np.interp(np.arange(30 * HOP), np.arange(30) * HOP, f0[0].numpy())
    phase = 2 * np.pi * np.concatenate([[0.0], np.cumsum(f0_samples / SR)[:-1]])
    np.testing.assert_allclose(y, np.sin(phase), atol=1e-4)
    assert np.abs(y - np.sin(2 * np.pi * 300 * np.arange(len(y)) / SR)).max() > 0.5  # the check can fail


def test_harmonics_above_nyquist_are_silenced():
    """At f0 = 3 kHz only harmonics 1 and 2 lie below 8 kHz; 3, 4, 5 would alias to 7, 4 and 1 kHz."""
    y = ddsp.harmonic_synth(torch.full((1, 125), 3000.0), torch.ones(1, 125, 5), SR, HOP)[0].numpy()
    spectrum = np.abs(np.fft.rfft(y)) / len(y)
    frequencies = np.fft.rfftfreq(len(y), 1 / SR)
    assert sorted(frequencies[spectrum > 0.01].tolist()) == [3000.0, 6000.0]
    # a glide through Nyquist: harmonic 3 is silent at every sample where 3 f0 >= sr / 2
    f0 = torch.linspace(2000.0, 3400.0, 50)[None]
    only_third = torch.zeros(1, 50, 3)
    only_third[..., 2] = 1.0
    y = ddsp.harmonic_synth(f0, only_third, SR, HOP)[0].numpy()
    f0_samples = np.interp(np.arange(50 * HOP), np.arange(50) * HOP, f0[0].numpy())
    assert np.abs(y[3 * f0_samples >= SR / 2]).max() == 0
    assert np.abs(y[3 * f0_samples < SR / 2 - 300]).max() > 0.9


def test_filtered_noise_keeps_to_its_bands():
    magnitudes = torch.zeros(1, 100, 65)
    magnitudes[..., 10:21] = 1.0  # bands 10-20 of 125 Hz: 1250-2500 Hz
    y = ddsp.filtered_noise(magnitudes, HOP, torch.Generator().manual_seed(0))[0].numpy()
    assert y.shape == (100 * HOP,)
    power = np.abs(np.fft.rfft(y)) ** 2
    frequencies = np.fft.rfftfreq(len(y), 1 / SR)
    assert power[(frequencies > 1100) & (frequencies < 2650)].sum() / power.sum() > 0.97
    assert not ddsp.filtered_noise(torch.zeros(1, 10, 65), HOP).abs().max() > 0
    filters = ddsp.noise_filters(torch.rand(2, 3, 65))
    assert filters.shape == (2, 3, 128)
    torch.testing.assert_close(filters[..., 1:], filters[..., 1:].flip(-1))  # linear phase: symmetric taps


def test_decoder_shapes_and_controls():
    model = ddsp.DDSP(ddsp.DdspConfig(hidden=16, n_harmonics=12, n_noise_bands=9))
    f0 = torch.tensor([[220.0] * 10, [1000.0] * 10])
    controls = model.controls(f0, torch.full((2, 10), -30.0))
    assert controls["amplitude"].shape == (2, 10) and controls["noise_magnitudes"].shape == (2, 10, 9)
    distribution = controls["harmonic_distribution"]
    assert distribution.shape == (2, 10, 12)
    torch.testing.assert_close(distribution.sum(-1), torch.ones(2, 10))
    assert distribution[1, :, 7:].abs().max() == 0  # 8 x 1 kHz >= 8 kHz: no weight above Nyquist
    assert model(f0, torch.full((2, 10), -30.0)).shape == (2, 10 * HOP)
    y = ddsp.synthesise(model, f0[0].numpy(), np.full(10, -30.0))
    assert y.shape == (10 * HOP,) and np.isfinite(y).all()


@pytest.mark.parametrize("f0, loudness, match", [
    (np.full(5, 220.0), np.full(4, -30.0), "one shape"),
    (np.full(1, 220.0), np.full(1, -30.0), "T >= 2"),
    (np.array([220.0, np.nan]), np.full(2, -30.0), "NaN"),
    (np.array([220.0, 0.0]), np.full(2, -30.0), "> 0 Hz"),
])
def test_bad_controls_are_refused(f0, loudness, match):
    with pytest.raises(BadInputError, match=match):
        ddsp.check_controls(f0, loudness)


# Multi-scale spectral loss -----------------------------------------------------------------------------

T_4S = torch.arange(4 * SR, dtype=torch.float64) / SR


def _relative_terms(y_pred, y_true):
    """Each scale's linear term relative to the target's own size at that scale (its distance to silence)."""
    return (losses.multiscale_spectral_terms(y_pred, y_true, log_weight=0)
            / losses.multiscale_spectral_terms(torch.zeros_like(y_true), y_true, log_weight=0))


def test_spectral_loss_is_zero_only_for_matching_magnitudes():
    y = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert losses.multiscale_spectral_loss(y, y) == 0
    assert losses.multiscale_spectral_loss(-y, y) == 0  # another waveform, the same magnitudes
    assert (losses.multiscale_spectral_terms(0.9 * y, y) > 0).all()
    assert losses.multiscale_spectral_loss(y + 1e-3 * torch.randn_like(y), y) > 0
    with pytest.raises(ValueError, match="shapes differ"):
        losses.multiscale_spectral_loss(y[:, :100], y)


def test_spectral_loss_barely_sees_the_phases_of_resolved_partials():
    """Five partials of 220 Hz with other starting phases: a waveform distance calls them as far apart as
    two unrelated signals; the large windows, which resolve the partials, hardly see a difference; the
    smallest, whose bins (250 Hz at 64 samples) hold two partials each, see them beat."""
    y = sum(torch.sin(2 * math.pi * 220 * k * T_4S) / k for k in range(1, 6))
    shifted = sum(torch.sin(2 * math.pi * 220 * k * T_4S + 1.3 * k) / k for k in range(1, 6))
    assert ((y - shifted) ** 2).mean() / (y ** 2).mean() > 1.5
    relative = _relative_terms(shifted, y)
    level = _relative_terms(0.9 * y, y)  # a 1 dB change of level, for scale
    assert (relative[:3] < 0.5 * level[:3]).all()  # 2048, 1024, 512
    assert relative[-1] > 3 * level[-1]  # 64


def test_large_scales_see_frequency_and_small_scales_see_time():
    sine, detuned = torch.sin(2 * math.pi * 440 * T_4S), torch.sin(2 * math.pi * 443 * T_4S)
    frequency = _relative_terms(detuned, sine)
    click, late_click = torch.zeros_like(T_4S), torch.zeros_like(T_4S)
    click[2 * SR], late_click[2 * SR + 8] = 1.0, 1.0
    timing = _relative_terms(late_click, click)
    assert frequency[0] > 5 * frequency[-1]  # 2048 samples resolve 3 Hz better than 64
    assert timing[-1] > 5 * timing[0]  # 8 samples (0.5 ms) move a click across 64-sample frames, not 2048
    assert list(frequency) == sorted(frequency, reverse=True)[:4] + list(frequency[4:])  # falls from 2048 to 256


# Pitch and loudness ------------------------------------------------------------------------------------


def test_loudness_is_the_a_weighted_mean_square_in_db():
    t = np.arange(SR) / SR
    at_1k = audio.a_weighted_loudness_db(0.8 * np.sin(2 * np.pi * 1000 * t), SR)
    np.testing.assert_allclose(at_1k[8:-8], 10 * np.log10(0.8 ** 2 / 2), atol=0.05)
    at_100 = audio.a_weighted_loudness_db(0.8 * np.sin(2 * np.pi * 100 * t), SR)
    np.testing.assert_allclose(at_100[8:-8] - at_1k[8:-8], librosa.A_weighting(100.0), atol=0.1)
    assert at_1k.shape == (1 + SR // 128,)
    assert audio.a_weighted_loudness_db(np.zeros(SR), SR).max() == -100.0


def test_f0_from_the_score_holds_the_last_pitch_through_rests():
    notes = [symbolic.Note(60, 0, 1), symbolic.Note(67, 2, 1)]  # a quarter's rest between them at 120 qpm
    f0_hz, voiced = audio.notes_to_f0_hz(notes, n_frames=400, qpm=120)
    frame_s = HOP / SR
    at = lambda s: int(round(s / frame_s))  # noqa: E731
    assert f0_hz[at(0.2)] == pytest.approx(261.63, abs=0.01) and voiced[at(0.2)]
    assert f0_hz[at(0.75)] == pytest.approx(261.63, abs=0.01) and not voiced[at(0.75)]
    assert f0_hz[at(1.2)] == pytest.approx(392.0, abs=0.01) and voiced[at(1.2)] and not voiced[at(2.0)]


def test_pyin_finds_the_rendered_pitch():
    notes = [symbolic.Note(67, 0, 1), symbolic.Note(72, 1, 1)]
    y = audio.render_notes(notes, program=73)
    score_f0, score_voiced = audio.notes_to_f0_hz(notes, 1 + len(y) // HOP)
    pyin_f0, pyin_voiced = audio.pyin_f0_hz(y, SR)
    both = score_voiced & pyin_voiced
    assert both.mean() > 0.5
    cents = 1200 * np.abs(np.log2(pyin_f0[both] / score_f0[both]))
    assert np.median(cents) < 20 and (cents < 50).mean() > 0.9


# Timbre transfer and its bad input ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_decoder():
    torch.manual_seed(0)
    return ddsp.DDSP(ddsp.DdspConfig(hidden=16, n_harmonics=8)).eval()


@pytest.fixture(scope="module")
def flute():
    return audio.render_notes([symbolic.Note(67, 0, 1), symbolic.Note(69, 1, 1)], program=73)


def test_transfer_returns_audio_of_the_input_length(small_decoder, flute):
    y = recipes.synthesis.transfer_timbre(small_decoder, flute, SR)
    assert y.shape == flute.shape and np.isfinite(y).all()


@pytest.mark.parametrize("make, sr, match", [
    (lambda y: np.zeros_like(y), SR, "silent"),
    (lambda y: np.random.default_rng(0).uniform(-0.5, 0.5, len(y)).astype(np.float32), SR, "noise only"),
    (lambda y: np.clip(4 * y / np.abs(y).max(), -0.9, 0.9), SR, "clipped"),
    (lambda y: y, 22050, "expected 16000 Hz, got 22050 Hz"),
    (lambda y: y[:1000], SR, "too short"),
    (lambda y: np.where(np.arange(len(y)) == 100, np.nan, y), SR, "NaN"),
])
def test_transfer_refuses_bad_input_by_name(small_decoder, flute, make, sr, match):
    with pytest.raises(BadInputError, match=match) as error:
        recipes.synthesis.transfer_timbre(small_decoder, make(flute), sr, name="take1.wav")
    assert str(error.value).startswith("take1.wav")


# Recipe and resuming -----------------------------------------------------------------------------------


def test_ddsp_recipe_writes_loadable_weights_and_scores_the_transfer(tmp_path):
    result = recipes.synthesis.train_ddsp(out_dir=tmp_path, steps=2, command="test", progress=False)
    model, sidecar = ddsp.load_pretrained("ddsp-clarinet", path=tmp_path / "ddsp-clarinet.safetensors")
    assert sidecar["command"] == "test" and sidecar["metrics"]["steps"] == 2 and model.config.instrument == "clarinet"
    assert result["test_lsd_input"] > 5 and result["test_lsd_transfer"] > 0
    assert -60 < model.config.mean_loudness_db < 0


def test_ddsp_recipe_trains_on_a_recording(tmp_path):
    y = audio.render_notes([symbolic.Note(p, i, 1) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74] * 2)],
                           program=40)
    audio.save_audio(tmp_path / "violin.wav", 0.8 * y / np.abs(y).max(), SR)
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really")
    recipes.synthesis.train_ddsp(out_dir=tmp_path / "out", steps=1, progress=False, data=str(tmp_path))
    model, sidecar = ddsp.load_pretrained("ddsp-recording", path=tmp_path / "out" / "ddsp-recording.safetensors")
    assert model.config.instrument == "recording" and [name for name, _ in sidecar["skipped_files"]] == ["noise.wav"]


def _ddsp_run(init_seed: int):
    torch.manual_seed(init_seed)
    config = ddsp.DdspConfig(hidden=8, n_harmonics=6, n_noise_bands=9)
    model = ddsp.DDSP(config)
    rng = np.random.default_rng(0)
    clips = [{"y": rng.normal(0, 0.1, 30 * HOP).astype(np.float32), "f0_hz": rng.uniform(200, 400, 30).astype(np.float32),
              "loudness_db": rng.uniform(-50, -20, 30).astype(np.float32),
              "note_features": rng.uniform(0, 1, (30, ddsp.N_NOTE_FEATURES)).astype(np.float32)} for _ in range(3)]
    batches = recipes.synthesis.SegmentBatches(clips, 10, HOP, batch_size=2, batches_per_pass=5)
    return model, torch.optim.Adam(model.parameters(), lr=1e-2), recipes.synthesis.ddsp_step(model), batches


def test_interrupted_ddsp_run_resumes_exactly(tmp_path):
    model, optimizer, step, batches = _ddsp_run(0)
    train.fit(model, optimizer, step, batches, 12, progress=False)
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    calls = []

    def stopping_step(batch, update):
        calls.append(1)
        if len(calls) == 7:
            signal.raise_signal(signal.SIGTERM)
        return step(batch, update)

    path = tmp_path / "run.pt"
    model, optimizer, step, batches = _ddsp_run(0)
    with pytest.raises(TrainingInterrupted):
        train.fit(model, optimizer, stopping_step, batches, 12, checkpoint_path=path, progress=False)
    model, optimizer, step, batches = _ddsp_run(3)  # a new process: other initial weights
    assert train.fit(model, optimizer, step, batches, 12, checkpoint_path=path, progress=False).resumed_from == 7
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6, msg=key)


def test_shipped_clarinet_decoder_plays_held_out_tunes_closer_than_a_flute_does():
    from musiclab import datasets

    model, sidecar = ddsp.load_pretrained("ddsp-clarinet")
    assert sidecar["mode"] == "full" and model.config.instrument == "clarinet"
    rows = []
    for tune in recipes.cyclegan._spread(datasets.load_folk("test"), 3):
        [(flute, notes)] = recipes.synthesis.render_melodies([tune], 73, 16)
        [(clarinet, _)] = recipes.synthesis.render_melodies([tune], 71, 16)
        example = recipes.synthesis.ddsp_features(clarinet, model.config, notes)
        resynthesis = ddsp.synthesise(model, example["f0_hz"], example["loudness_db"])
        f0_hz = audio.notes_to_f0_hz(notes, 1 + len(flute) // HOP)[0]
        transfer = recipes.synthesis.transfer_timbre(model, flute, SR, f0_hz, spans=audio.note_spans(notes))
        rows.append([recipes.synthesis.log_mel_lsd_db(y, clarinet, SR) for y in (resynthesis, transfer, flute)])
    resynthesis_lsd, transfer_lsd, identity_lsd = np.mean(rows, axis=0)
    assert resynthesis_lsd < 0.6 * identity_lsd and transfer_lsd < 0.85 * identity_lsd


# Notes and articulation -----------------------------------------------------------------------------------


MELODY = [symbolic.Note(p, s, d) for p, s, d in
          [(67, 0, 1), (67, 1, 0.5), (69, 1.5, 0.5), (71, 2, 1.5), (72, 3.5, 0.5), (72, 4, 1), (74, 5, 1)]]


def test_note_spans_are_where_the_renderer_plays_the_notes():
    spans = audio.note_spans(MELODY)
    assert spans[:, 0].tolist() == [round(n.start * 0.5 * SR) for n in MELODY]
    y = audio.render_notes(MELODY[:1], program=73)
    first_sound = int(np.argmax(np.abs(y) > 1e-4))
    assert abs(first_sound - spans[0, 0]) < 0.01 * SR
    assert (spans[:, 1] > spans[:, 0]).all() and spans[:, 2].tolist() == [n.pitch for n in MELODY]


def test_notes_found_in_a_flute_recording_match_the_score_including_the_repeated_note():
    y = audio.render_notes(MELODY, program=73)
    loudness = audio.a_weighted_loudness_db(y, SR, 1024, HOP)
    f0_hz, _ = audio.notes_to_f0_hz(MELODY, len(loudness), sr=SR, hop_length=HOP)
    found = audio.detect_note_spans(f0_hz, loudness, HOP)
    score = audio.note_spans(MELODY)
    nearest = np.abs(found[:, 0][None] - score[:, 0][:, None]).argmin(axis=1)
    assert np.abs(found[nearest, 0] - score[:, 0]).max() <= 6 * HOP  # every attack, within 48 ms (a flute's is slow)
    assert found[nearest, 2].tolist() == score[:, 2].tolist()
    assert len(found) <= len(score) + 2  # the flute's tremolo may split a long note


def test_note_features_count_the_clocks_of_the_latest_note():
    spans = np.array([[0, 10 * HOP, 60, 80], [4 * HOP, 6 * HOP, 72, 80]])
    features = ddsp.note_features(spans, 8, HOP)
    since_on, until_off, pitch, onset, held = features.T
    np.testing.assert_allclose(since_on * ddsp.NOTE_CLOCK_FRAMES, [0, 1, 2, 3, 0, 1, 2, 3], atol=1e-5)
    np.testing.assert_allclose(until_off * ddsp.NOTE_CLOCK_FRAMES, [10, 9, 8, 7, 2, 1, 0, -1], atol=1e-5)
    np.testing.assert_allclose(pitch * 127, [60] * 4 + [72] * 4, atol=1e-4)
    assert onset.tolist() == [1, 0, 0, 0, 1, 0, 0, 0] and held.tolist() == [1] * 6 + [0, 0]


def test_transfer_dynamics_must_be_known(small_decoder, flute):
    with pytest.raises(BadInputError, match="dynamics"):
        recipes.synthesis.transfer_timbre(small_decoder, flute, SR, dynamics="loud")


def test_shipped_articulation_predicts_clarinet_loudness_better_than_the_flutes_own_curve():
    from musiclab import datasets

    model, _ = ddsp.load_pretrained("ddsp-clarinet")
    errors = []
    for tune in recipes.cyclegan._spread(datasets.load_folk("test"), 3):
        [(flute, notes)] = recipes.synthesis.render_melodies([tune], 73, 16)
        [(clarinet, _)] = recipes.synthesis.render_melodies([tune], 71, 16)
        truth = audio.a_weighted_loudness_db(clarinet, SR, 1024, HOP)
        f0_hz = audio.notes_to_f0_hz(notes, len(truth))[0]
        curves = [recipes.synthesis.transfer_loudness_db(model, flute, f0_hz, audio.note_spans(notes), dynamics)
                  for dynamics in ("instrument", "source")]
        n = min(len(truth), *map(len, curves))
        errors.append([np.abs(c[:n] - truth[:n]).mean() for c in curves])
    articulation_error, source_error = np.mean(errors, axis=0)
    assert articulation_error < 0.7 * source_error
