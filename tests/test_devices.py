"""Device plumbing: auto picks the CPU here, cuda without a GPU is a clear refusal, the CPU path is
unchanged, frames are read ahead safely; on a machine with a GPU, CUDA gives the CPU's results."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion_core.analysis import Analyzer
from emotion_core.devices import CPU_BATCHING, DEVICE_ENV, DeviceError, device_from_env, resolve_device
from emotion_core.media import prefetch

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="not a device name"):
        resolve_device("quantum")


def test_the_app_reads_its_device_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert device_from_env() == torch.device("cpu")
    monkeypatch.delenv(DEVICE_ENV)
    assert device_from_env() == resolve_device("auto")


@needs_no_gpu
def test_cuda_without_a_gpu_is_refused_in_words() -> None:
    with pytest.raises(DeviceError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
    with pytest.raises(DeviceError):
        Analyzer(device="cuda:0")


@needs_no_gpu
@pytest.mark.parametrize("command", [["analyze", "x.wav"], ["explain", "x.wav", "--out", "o"],
                                     ["batch", "x", "--out", "o"], ["evaluate", "voice", "--data", "x"]])
def test_the_commands_refuse_cuda_without_a_gpu(command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """In-process through the main entry (the same parser and error path as ``python -m emotion_core``; a
    process of its own cost 4 s a command): exit status 2 and the one-line message."""
    from emotion_core.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU is visible" in err and "Traceback" not in err


def test_on_the_cpu_the_models_and_detector_stay_there_with_the_measured_batches(analyzer: Analyzer) -> None:
    a = Analyzer(models=analyzer.models, detector=analyzer.detector)
    assert a.device == torch.device("cpu") and a.batching == CPU_BATCHING
    for net in (a.models.voice.model, a.models.face.model):
        assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert analyzer.detector.mtcnn.device == torch.device("cpu")


def test_prefetch_keeps_order_passes_errors_and_closes_the_source() -> None:
    assert list(prefetch(iter(range(100)), 8)) == list(range(100))
    assert list(prefetch(iter(range(5)), 0)) == list(range(5))

    def failing():
        yield 1
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        list(prefetch(failing(), 4))
    closed = threading.Event()

    def source():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    it = prefetch(source(), 4)
    assert next(it) == 0
    it.close()  # the consumer stops early: the reader stops and the source is closed
    assert closed.wait(5)


@needs_gpu
def test_cuda_gives_the_cpus_results(media_dir: Path, analyzer: Analyzer) -> None:
    gpu = Analyzer(device="cuda")
    for name in ("talking.mp4", "voice.wav", "face.jpg"):
        a, b = analyzer.analyze(media_dir / name), gpu.analyze(media_dir / name)
        assert a.label == b.label and [w.label for w in a.timeline] == [w.label for w in b.timeline]
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
