"""The KEDA ScaledObjects: generated from the queue contract, committed as generated."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from core import factors as registry
from core.scaling import (
    REDIS_ADDRESS_ENV,
    REDIS_PASSWORD_ENV,
    PoolScaling,
    keda_filename,
    main,
    pool_scaling,
    render_yaml,
    scaled_objects,
)

from .deploy_files import DOCKER, K8S_BASE, base_documents, by_kind, load_script, pod_spec


def test_committed_keda_yaml_equals_generator_output() -> None:
    # Given the generator run with the contract's queue names
    objects = scaled_objects({f.name: f.queue for f in registry.installed().values()})
    # Then each committed file is exactly what it emits
    for factor, obj in zip(registry.names(), objects, strict=True):
        committed = (K8S_BASE / keda_filename(factor)).read_text(encoding="utf-8")
        assert committed == render_yaml(obj), (
            f"regenerate: python -m core.scaling --emit-keda {K8S_BASE}"
        )


@pytest.mark.parametrize("factor", registry.names())
def test_list_name_is_the_factor_celery_queue(factor: str) -> None:
    # Given the committed ScaledObject of a factor
    obj = yaml.safe_load((K8S_BASE / keda_filename(factor)).read_text(encoding="utf-8"))
    # Then it watches the Redis list kombu keeps for that factor's queue
    (trigger,) = [t for t in obj["spec"]["triggers"] if t["type"] == "redis"]
    assert trigger["metadata"]["listName"] == registry.get(factor).queue


def test_queue_override_changes_only_that_pool() -> None:
    # Given an operator who moved face scoring to its own queue
    objects = scaled_objects({"face": "score.face.a100", "webhooks": "ignored"})
    # When the ScaledObjects are built
    names = {o["metadata"]["labels"]["tacit.dev/factor"]: o["spec"]["triggers"][0] for o in objects}
    # Then face watches the new list and the others keep the defaults
    assert names["face"]["metadata"]["listName"] == "score.face.a100"
    assert names["gait"]["metadata"]["listName"] == registry.get("gait").queue


def test_generator_refuses_min_above_max() -> None:
    bad = PoolScaling(list_length=10, activation_list_length=1, min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="min_replicas"):
        scaled_objects(scaling={"gait": bad})


def test_scaled_objects_validate_against_the_keda_crd() -> None:
    # Given KEDA's vendored CRD schema, tightened like strict field validation
    checker = load_script(DOCKER / "check_manifests.py")
    validator = checker.crd_validators()[("keda.sh/v1alpha1", "ScaledObject")]
    # Then every generated object validates (metadata values must all be strings)
    for obj in scaled_objects():
        assert checker.check_custom(obj, validator) == []
    # and a typo is caught
    broken = scaled_objects()[0]
    broken["spec"]["pollingIntervall"] = 5
    assert checker.check_custom(broken, validator)


@pytest.mark.parametrize("factor", registry.names())
def test_scale_target_exposes_the_env_keda_reads(factor: str) -> None:
    # Given a factor's ScaledObject and the Deployments of the base
    (obj,) = [o for o in scaled_objects() if o["metadata"]["labels"]["tacit.dev/factor"] == factor]
    deployments = by_kind(base_documents(), "Deployment")
    ref = obj["spec"]["scaleTargetRef"]
    # Then its target exists and the named container defines the variables KEDA resolves
    container = next(
        c
        for c in pod_spec(deployments[ref["name"]])["containers"]
        if c["name"] == ref["envSourceContainerName"]
    )
    env = {e["name"] for e in container.get("env", [])}
    metadata = next(t for t in obj["spec"]["triggers"] if t["type"] == "redis")["metadata"]
    assert {metadata["addressFromEnv"], metadata["passwordFromEnv"]} == {
        REDIS_ADDRESS_ENV,
        REDIS_PASSWORD_ENV,
    }
    assert {REDIS_ADDRESS_ENV, REDIS_PASSWORD_ENV} <= env
    # and the worker consumes the very queue KEDA watches
    assert container["args"][:3] == ["worker", "--factor", factor]


def test_emit_keda_writes_one_file_per_factor(tmp_path) -> None:
    # When the module's command writes the manifests
    assert main(["--emit-keda", str(tmp_path)]) == 0
    # Then there is one file per factor, identical to the committed one
    for factor in registry.names():
        written = (tmp_path / keda_filename(factor)).read_text(encoding="utf-8")
        assert written == (K8S_BASE / keda_filename(factor)).read_text(encoding="utf-8")


def test_gpu_pools_scale_to_zero_and_validate_against_the_keda_crd() -> None:
    # Given the committed ScaledObjects and KEDA's vendored CRD schema
    checker = load_script(DOCKER / "check_manifests.py")
    validator = checker.crd_validators()[("keda.sh/v1alpha1", "ScaledObject")]
    objects = {
        f: yaml.safe_load((K8S_BASE / keda_filename(f)).read_text(encoding="utf-8"))
        for f in registry.names()
    }
    # Then the GPU pools may go to zero, the CPU pool keeps a warm replica
    assert objects["gait"]["spec"]["minReplicaCount"] == 0
    assert objects["face"]["spec"]["minReplicaCount"] == 0
    assert objects["keystroke"]["spec"]["minReplicaCount"] == 1
    # and every pool at zero still validates, with its cooldown as KEDA's and the HPA's window
    for factor in registry.names():
        figures = dataclasses.replace(pool_scaling()[factor], min_replicas=0, cooldown_s=120)
        (obj,) = [
            o
            for o in scaled_objects(scaling={factor: figures})
            if o["metadata"]["labels"]["tacit.dev/factor"] == factor
        ]
        assert checker.check_custom(obj, validator) == []
        assert obj["spec"]["minReplicaCount"] == 0 and obj["spec"]["cooldownPeriod"] == 120
        behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 120


@pytest.mark.parametrize("factor", registry.names())
def test_age_trigger_queries_the_factor_age_against_half_its_objective(factor: str) -> None:
    # Given a factor's committed ScaledObject
    obj = yaml.safe_load((K8S_BASE / keda_filename(factor)).read_text(encoding="utf-8"))
    figures = pool_scaling()[factor]
    # Then beside the list trigger, a Value-type Prometheus trigger follows the oldest job's age
    triggers = {t["name"]: t for t in obj["spec"]["triggers"]}
    age = triggers[f"age-{factor}"]
    assert age["type"] == "prometheus"
    assert age["metricType"] == "Value"
    assert age["metadata"]["query"] == f'max(tacit_queue_oldest_age_seconds{{factor="{factor}"}})'
    assert float(age["metadata"]["threshold"]) == figures.latency_objective_s / 2
    assert float(age["metadata"]["activationThreshold"]) == figures.activation_age_s
    (length,) = [t for t in obj["spec"]["triggers"] if t["type"] == "redis"]
    assert length["metadata"]["activationListLength"] == str(figures.activation_list_length)
    # and a rate trigger on the jobs the workers score keeps a busy pool awake (activation 0)
    rate = triggers[f"rate-{factor}"]
    assert rate["metadata"]["query"] == f'sum(rate(tacit_jobs_total{{factor="{factor}"}}[120s]))'
    assert rate["metadata"]["activationThreshold"] == "0"
    assert float(rate["metadata"]["threshold"]) == figures.jobs_per_s_target
