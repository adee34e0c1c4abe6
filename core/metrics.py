"""Prometheus metrics shared by the API and the workers (names are a contract with
docker/grafana/tacit.json and docker/prometheus-rules.yml: never rename lightly).

Which process exports what:

- every worker: ``tacit_jobs_total``, ``tacit_upload_to_score_seconds``,
  ``tacit_queue_wait_seconds``, ``tacit_stage_seconds``, ``tacit_batch_size``;
  the webhook worker ``tacit_webhook_deliveries_total``;
- the API: ``tacit_upload_seconds``, and at scrape time ``tacit_queue_depth`` (Redis
  LLEN), ``tacit_dead_jobs`` and ``tacit_queue_oldest_age_seconds`` (Postgres), which
  ``ScrapeTimeGauges`` builds.

Also the Redis keys the operator dashboard reads, written by the relay (queue depth
history) and the worker pools (heartbeats), so api/ and workers/ share one name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Redis keys of the operator dashboard.
QUEUE_DEPTH_HISTORY_KEY = "tacit:ops:queue-depth"  # list of JSON samples, newest first
QUEUE_DEPTH_SAMPLE_LOCK = "tacit:ops:queue-depth:lock"  # one sample per interval across relays
QUEUE_DEPTH_SAMPLE_EVERY_S = 5
QUEUE_DEPTH_HISTORY_LEN = 720  # one hour at one sample per 5 s
WORKER_HEARTBEAT_PREFIX = "tacit:ops:worker:"  # + hostname:pid, JSON, expires unless renewed
WORKER_HEARTBEAT_EVERY_S = 5
WORKER_HEARTBEAT_TTL_S = 20


_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_UPLOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

JOBS = Counter(
    "tacit_jobs",
    "Jobs a worker finished, by factor and status (done, failed, dead, retry).",
    ["factor", "status"],
)
UPLOAD_SECONDS = Histogram(
    "tacit_upload_seconds", "Time the API spent on POST /v1/batches.", buckets=_UPLOAD_BUCKETS
)
UPLOAD_TO_SCORE_SECONDS = Histogram(
    "tacit_upload_to_score_seconds",
    "From the job's creation (upload accepted) to its score.",
    ["factor"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_WAIT_SECONDS = Histogram(
    "tacit_queue_wait_seconds",
    "From publishing a job to a worker claiming it.",
    ["factor"],
    buckets=_LATENCY_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "tacit_stage_seconds",
    "Time one job spent in each scoring stage.",
    ["factor", "stage"],
    buckets=_STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "tacit_batch_size",
    "Model input rows per forward pass of the dynamic batcher.",
    ["factor"],
    buckets=_BATCH_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "tacit_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["outcome"],
)


def _gauge(
    name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]
) -> GaugeMetricFamily:
    """A gauge with one sample per key of ``read()``; empty when its source is down."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    try:
        for key, value in read().items():
            family.add_metric([key], float(value))
    except Exception:  # noqa: BLE001 - a source down leaves only its own gauge empty
        pass
    return family


class ScrapeTimeGauges(Collector):
    """``tacit_queue_depth{queue}``, ``tacit_dead_jobs{factor}`` and
    ``tacit_queue_oldest_age_seconds{factor}``, read when scraped.

    ``depths``, ``dead`` and ``ages`` are callables so the caller owns its clients; a
    source that fails is left out of that scrape rather than failing the whole scrape.
    """

    def __init__(
        self,
        depths: Callable[[], Mapping[str, int]],
        dead: Callable[[], Mapping[str, int]],
        ages: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.depths, self.dead, self.ages = depths, dead, ages

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = [
            _gauge(
                "tacit_queue_depth",
                "Messages waiting in a Celery queue (Redis LLEN).",
                "queue",
                self.depths,
            ),
            _gauge(
                "tacit_dead_jobs",
                "Jobs in the dead state (attempts exhausted), by factor.",
                "factor",
                self.dead,
            ),
        ]
        if self.ages is not None:
            families.append(
                _gauge(
                    "tacit_queue_oldest_age_seconds",
                    "Seconds the oldest queued job of a factor has waited since its upload"
                    " (0 when none); KEDA scales on it against the factor's latency objective.",
                    "factor",
                    self.ages,
                )
            )
        return families

    def describe(self) -> Iterable[Metric]:
        return []  # no pre-registration query against Postgres/Redis
