"""A real Celery task through the real broker to a real worker process, and its result back."""

from workers.tasks import ping


def test_it_runs_a_task_on_a_real_worker(celery_worker_process):
    result = ping.apply_async(args=["hello"], queue="default").get(timeout=60)

    assert result["echo"] == "hello"
    assert result["pid"] == celery_worker_process.process.pid or result["pid"] != 0
    assert result["pid"] != __import__("os").getpid()  # it ran in the worker, not in this process
