import librosa
import numpy as np
import pytest
from conftest import voiced_signal

from emotion_core.constants import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE
from emotion_core.features import frame_dbfs, log_mel, voice_activity, voice_windows


def test_log_mel_matches_librosa_reference() -> None:
    y = voiced_signal(2.0)
    ours = log_mel(y)
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS) @ spec[:, :-1]
    ref = np.log10(np.maximum(mel, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8) + 4) / 4
    assert ours.shape == (N_MELS, len(y) // HOP_LENGTH)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_log_mel_of_tiny_input() -> None:
    assert log_mel(np.zeros(10, np.float32)).shape[0] == N_MELS


def test_silence_is_not_voice() -> None:
    assert not voice_activity(np.zeros(SAMPLE_RATE, np.float32)).any()
    assert frame_dbfs(np.zeros(SAMPLE_RATE, np.float32)).max() < -100
    assert voice_windows(np.zeros(SAMPLE_RATE * 3, np.float32)) == []


def test_windows_cover_long_audio() -> None:
    y = np.concatenate([voiced_signal(5.0, seed=s) for s in range(2)])  # 10 s of voice
    wins = voice_windows(y)
    assert wins[0][0] == 0.0 and wins[-1][1] == pytest.approx(10.0)
    assert all(e - s == pytest.approx(4.0) for s, e, _ in wins)
    assert len(wins) == 4  # 0-4, 2-6, 4-8, 6-10


def test_short_audio_one_window() -> None:
    wins = voice_windows(voiced_signal(2.0))
    assert len(wins) == 1 and wins[0][1] == pytest.approx(2.0)
