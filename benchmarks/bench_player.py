"""Size and fidelity of the book's audio players: each codec setting on rendered instruments.

For every clip (16 kHz, peak -1 dBFS as a player makes it): kbit/s, and the log-mel distance of the
decoded sound from the original (`audio.log_spectral_distance_db` of `audio.log_mel`, dB), for
libsndfile's default MP3, the players' setting (`audio.encode_for_player`), and OGG Vorbis and Opus
at the nearest sizes they reach. Last, the median pYIN pitch of a flute A4 before and after.

    python benchmarks/bench_player.py
"""
import io

import librosa
import numpy as np
import soundfile

from musiclab import audio

SR = audio.DEFAULT_SR
SETTINGS = {  # name: (format, subtype, compression level or None for libsndfile's default)
    "MP3, default": ("MP3", "MPEG_LAYER_III", None),
    f"MP3, players ({audio.PLAYER_COMPRESSION})": ("MP3", "MPEG_LAYER_III", audio.PLAYER_COMPRESSION),
    "Vorbis, smallest (1.0)": ("OGG", "VORBIS", 1.0),
    "Opus, 24 kbit/s (0.93)": ("OGG", "OPUS", 0.93),
}


def clips() -> dict:
    rendered = {
        "flute": audio.render_notes([(60 + i % 12, i * 0.5, 0.5, 90) for i in range(24)], program=73),
        "piano": audio.render_notes([(48 + (i * 5) % 24, i * 0.25, 0.5, 90) for i in range(48)], program=0),
        "organ chords": audio.render_notes([(n, i, 1, 80) for i in range(6) for n in (48 + i, 52 + i, 55 + i)],
                                           program=19),
        "violin": audio.render_notes([(55 + i % 7, i * 0.5, 0.5, 90) for i in range(24)], program=40),
        "trumpet": audio.render_notes([(60 + i % 9, i * 0.5, 0.5, 90) for i in range(24)], program=56),
    }
    return {name: (y * (10 ** (-1 / 20) / np.abs(y).max())).astype(np.float32) for name, y in rendered.items()}


def round_trip(y, fmt, subtype, level) -> tuple[np.ndarray, float]:
    """Decoded clip (cut or padded to ``len(y)``) and its size in kbit/s."""
    buffer = io.BytesIO()
    soundfile.write(buffer, y, SR, format=fmt, subtype=subtype,
                    **({} if level is None else {"compression_level": level}))
    decoded = soundfile.read(io.BytesIO(buffer.getvalue()), dtype="float32")[0]
    return np.pad(decoded, (0, max(0, len(y) - len(decoded))))[:len(y)], 8 * len(buffer.getvalue()) / (len(y) / SR) / 1000


def main():
    print("| clip | " + " | ".join(SETTINGS) + " |")
    print("| --- |" + " --- |" * len(SETTINGS))
    for name, y in clips().items():
        cells = []
        for fmt, subtype, level in SETTINGS.values():
            decoded, kbps = round_trip(y, fmt, subtype, level)
            distance = audio.log_spectral_distance_db(audio.log_mel(y, SR), audio.log_mel(decoded, SR))
            cells.append(f"{kbps:.0f} kbit/s, {distance:.2f} dB")
        print(f"| {name} | " + " | ".join(cells) + " |")
    flute = audio.render_note(69, program=73)
    data, _ = audio.encode_for_player(flute, SR)
    decoded = soundfile.read(io.BytesIO(data), dtype="float32")[0][:len(flute)]
    pitches = []
    for clip in (flute, decoded):
        f0, voiced, _ = librosa.pyin(clip, fmin=200, fmax=1000, sr=SR)
        pitches.append(float(np.nanmedian(f0[voiced])))
    print(f"\nflute A4, median pYIN pitch: {pitches[0]:.2f} Hz original, {pitches[1]:.2f} Hz in the player "
          f"({1200 * np.log2(pitches[1] / pitches[0]):+.1f} cents)")


if __name__ == "__main__":
    main()
