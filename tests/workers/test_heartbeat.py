"""The worker heartbeat: NVML inventory (or "no GPU"), and what one beat stores."""

from types import SimpleNamespace

import pytest

from webapp.fleet.models import Gpu, GPU_HISTORY_LENGTH, Worker
from workers.heartbeat import Heartbeat, read_gpus


class FakeNVML:
    """Stands in for pynvml on a machine with two GPUs (this test machine has none)."""

    NVML_TEMPERATURE_GPU = 0

    class NotSupported(Exception):
        pass

    def __init__(self, utilization=(35, 80), fail_init=False):
        self.utilization, self.fail_init, self.shut = utilization, fail_init, False

    def nvmlInit(self):
        if self.fail_init:
            raise OSError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=80 * 2**30, used=(h + 1) * 2**30)

    def nvmlDeviceGetUtilizationRates(self, h):
        if self.utilization[h] is None:
            raise self.NotSupported("Not Supported")
        return SimpleNamespace(gpu=self.utilization[h])

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 40 + h


def test_it_says_no_gpu_on_this_machine():
    gpus, note = read_gpus()

    assert gpus == []
    assert note.startswith("no GPU")


def test_it_reads_every_gpu():
    nvml = FakeNVML()

    gpus, note = read_gpus(nvml)

    assert note == ""
    assert nvml.shut
    assert gpus[1] == {"index": 1, "uuid": "GPU-1", "name": "NVIDIA H100 80GB HBM3", "memory_total": 80 * 2**30,
                       "memory_used": 2 * 2**30, "utilization": 80, "temperature": 41}


def test_an_unsupported_reading_is_none_not_an_error():
    gpus, _ = read_gpus(FakeNVML(utilization=(None, 5)))

    assert gpus[0]["utilization"] is None
    assert gpus[1]["utilization"] == 5


def test_a_missing_driver_is_no_gpu():
    assert read_gpus(FakeNVML(fail_init=True)) == ([], "no GPU (NVML Shared Library Not Found)")


@pytest.mark.django_db
def test_a_beat_stores_the_worker_and_its_gpus():
    beat = Heartbeat("gpu1@node", queues=lambda: ["gpu.8", "default"], interval=1, nvml=FakeNVML())

    for _ in range(GPU_HISTORY_LENGTH + 5):
        beat.beat()

    worker = Worker.objects.get(hostname="gpu1@node")
    gpu = Gpu.objects.get(worker=worker, index=1)
    assert worker.queues == ["default", "gpu.8"]
    assert worker.state == Worker.State.ONLINE
    assert worker.gpu_note == ""
    assert gpu.uuid == "GPU-1" and gpu.utilization == 80 and gpu.temperature == 41
    assert len(gpu.history) == GPU_HISTORY_LENGTH  # capped


@pytest.mark.django_db(transaction=True)
def test_the_thread_beats_and_stops():
    beat = Heartbeat("cpu1@node", interval=0.05)
    beat.start()
    try:
        for _ in range(200):
            if beat.beats >= 2:
                break
            beat._stop_event.wait(0.05)
    finally:
        beat.stop()

    assert not beat.is_alive()
    assert beat.beats >= 2
    assert Worker.objects.get(hostname="cpu1@node").gpu_note.startswith("no GPU")
