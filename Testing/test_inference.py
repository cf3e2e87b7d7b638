"""Device choice, sliding-window inference, and the out-of-memory fallback."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import sliding_window_inference

from MSLesionAILib.devices import choose_device
from MSLesionAILib.errors import InputError
from MSLesionAILib.inference import count_windows, predict_sliding_window, run_with_memory_fallback
from MSLesionAILib.progress import Progress


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else None
    device = choose_device("auto")
    assert device.type == expected or (expected is None and device.type in ("cpu", "mps"))
    assert choose_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_an_absent_gpu_is_a_clear_error():
    with pytest.raises(InputError, match="--device: cuda requested"):
        choose_device("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(InputError, match="not one of"):
        choose_device("tpu")


def test_gpu_out_of_memory_falls_back_to_smaller_batch_then_cpu():
    calls, warnings = [], []

    def call(device, batch):
        calls.append((device.type, batch))
        if device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    assert run_with_memory_fallback(call, torch.device("cuda"), 4, warnings) == "done"
    assert calls == [("cuda", 4), ("cuda", 1), ("cpu", 4)]
    assert len(warnings) == 2 and "retrying on cpu" in warnings[-1]


def test_other_errors_are_not_swallowed():
    def call(device, batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_memory_fallback(call, torch.device("cuda"), 4, [])


def test_out_of_memory_on_cpu_is_raised():
    def call(device, batch):
        raise RuntimeError("DefaultCPUAllocator: out of memory")

    with pytest.raises(RuntimeError):
        run_with_memory_fallback(call, torch.device("cpu"), 4, [])


@pytest.mark.parametrize("size", [(20, 24, 17), (8, 8, 8), (33, 16, 40)])
def test_window_count_matches_monai(size):
    calls = []

    def predictor(batch):
        calls.append(batch.shape[0])
        return batch

    sliding_window_inference(torch.zeros(1, 1, *size), (8, 8, 8), 1, predictor, overlap=0.5)
    assert count_windows(size, (8, 8, 8), 0.5) == len(calls)


def test_sliding_window_reproduces_a_pointwise_network_and_reports_progress():
    network = torch.nn.Conv3d(1, 2, kernel_size=1)
    image = torch.randn(1, 1, 20, 24, 17)
    seen = []
    logits = predict_sliding_window(network, image, (8, 8, 8), torch.device("cpu"), [],
                                    Progress(lambda f, m: seen.append(f)), batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(logits, network(image), atol=1e-5, rtol=1e-4)
    assert seen[-1] == 1.0 and seen == sorted(seen)
