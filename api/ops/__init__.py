"""The operator dashboard at ``/ops``: queues, throughput, latency, worker pools, dead
jobs (with requeue) and the deployed models' evaluation, behind the operator token."""

from api.ops.router import router

__all__ = ["router"]
