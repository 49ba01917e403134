"""Prometheus metrics for jobs, beside those of :class:`covet.metrics.Metrics`.

::

    from covet.jobs.metrics import JobMetrics
    from covet.metrics import Metrics

    metrics = Metrics()
    JobMetrics(metrics)        # registers the job series in metrics.registry

It records, labelled ``queue`` and ``job`` (the job's name):

* ``covet_jobs_enqueued_total``: jobs put on a queue by this process;
* ``covet_jobs_running``: jobs running now in this process;
* ``covet_jobs_finished_total``, also labelled ``outcome`` (``succeeded``,
  ``retried``, ``failed``, ``released``);
* ``covet_job_duration_seconds``: how long runs took;
* ``covet_job_wait_seconds``: from due to started (the latency a queue adds);
* ``covet_jobs_queued`` (``queue``, ``status``): jobs stored per queue and
  status, refreshed by each worker every 15 s.

Web processes count what they enqueue, workers the rest. With
``PROMETHEUS_MULTIPROC_DIR`` set for both, one ``/metrics`` endpoint adds them up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from covet.jobs.core import add_observer, remove_observer
from covet.metrics import DEFAULT_BUCKETS, Metrics

if TYPE_CHECKING:
    from collections.abc import Mapping

    from covet.jobs.core import ClaimedJob

__all__ = ("JobMetrics",)

#: Wait buckets in seconds: 10 ms to 10 minutes.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)


class JobMetrics:
    """Record job metrics in the registry of ``metrics`` (added as a job observer).

    Args:
        metrics: The app's :class:`~covet.metrics.Metrics`; its registry and
            namespace are used.
    """

    def __init__(self, metrics: Metrics) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        namespace, registry = metrics.namespace, metrics.registry
        self.enqueued = Counter(
            "jobs_enqueued",
            "Jobs put on a queue.",
            ("queue", "job"),
            namespace=namespace,
            registry=registry,
        )
        self.running = Gauge(
            "jobs_running",
            "Jobs running now.",
            ("queue", "job"),
            namespace=namespace,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.finished = Counter(
            "jobs_finished",
            "Job runs ended, by outcome (succeeded, retried, failed, released).",
            ("queue", "job", "outcome"),
            namespace=namespace,
            registry=registry,
        )
        self.duration = Histogram(
            "job_duration_seconds",
            "Seconds a job run took.",
            ("queue", "job"),
            namespace=namespace,
            buckets=DEFAULT_BUCKETS,
            registry=registry,
        )
        self.wait = Histogram(
            "job_wait_seconds",
            "Seconds from when a job was due to when a worker started it.",
            ("queue", "job"),
            namespace=namespace,
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.queued = Gauge(
            "jobs_queued",
            "Jobs stored, per queue and status (refreshed by the workers).",
            ("queue", "status"),
            namespace=namespace,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        add_observer(self)

    def close(self) -> None:
        """Stop recording (the values recorded stay readable)."""
        remove_observer(self)

    def job_enqueued(self, name: str, queue: str) -> None:
        """Count a job put on ``queue``."""
        self.enqueued.labels(queue, name).inc()

    def job_started(self, job: ClaimedJob) -> None:
        """Count ``job`` as running and record how long it waited."""
        self.running.labels(job.queue, job.name).inc()
        self.wait.labels(job.queue, job.name).observe(max(0.0, time.time() - job.run_at))

    def job_finished(self, job: ClaimedJob, outcome: str, duration: float) -> None:
        """Record the end of ``job``'s run."""
        self.running.labels(job.queue, job.name).dec()
        self.finished.labels(job.queue, job.name, outcome).inc()
        self.duration.labels(job.queue, job.name).observe(duration)

    def queue_counts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Set the stored-jobs gauge from a backend's counts."""
        self.queued.clear()
        for (queue, status), count in counts.items():
            self.queued.labels(queue, status).set(count)
