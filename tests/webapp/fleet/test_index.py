"""The fleet page and its JSON feed: workers, GPUs with sparklines, queues; admins only."""

from webapp.fleet import services


def gpu_worker():
    for util in (10, 50, 90):
        services.heartbeat("gpu1@node", host="node", queues=["gpu.8"], version="v1", pid=7, gpus=[
            {"index": 0, "uuid": "GPU-abc", "name": "NVIDIA H100", "memory_total": 80 * 2**30,
             "memory_used": 2**30, "utilization": util, "temperature": 50}])


def test_it_shows_workers_gpus_and_queues(admin_client):
    gpu_worker()
    services.heartbeat("cpu1@node", queues=["cpu", "default"], pid=8, gpu_note="no GPU (NVML Shared Library Not Found)")

    page = admin_client.get("/fleet/").content.decode()

    assert "gpu1@node" in page and "cpu1@node" in page
    assert "NVIDIA H100" in page and "GPU-abc" in page
    assert "<polyline" in page
    assert "no GPU (NVML Shared Library Not Found)" in page
    assert "gpu.8" in page


def test_the_feed_has_the_history_for_sparklines(admin_client):
    gpu_worker()

    data = admin_client.get("/fleet/workers.json").json()

    gpu = data["workers"][0]["gpus"][0]
    assert gpu["history"] == [10, 50, 90]
    assert gpu["utilization"] == 90
    assert data["heartbeat_seconds"] > 0


def test_non_admins_are_refused(client, people):
    assert client.get("/fleet/").status_code == 302
    assert client.get("/fleet/workers.json").status_code == 401
    client.force_login(people.owner)
    assert client.get("/fleet/").status_code == 403
    assert client.get("/fleet/workers.json").status_code == 403
    assert client.post("/fleet/").status_code == 405
