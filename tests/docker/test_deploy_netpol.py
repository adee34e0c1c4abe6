"""NetworkPolicies: the webhook pool, which calls tenant-chosen URLs, reaches only DNS, the
databases and public addresses on 443."""

from __future__ import annotations

import ipaddress

from .deploy_files import base_documents, by_kind, pod_spec

PRIVATE = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "127.0.0.0/8",
    "100.64.0.0/10",
]


def _policies_for(labels: dict[str, str]) -> list[dict]:
    return [
        p
        for p in by_kind(base_documents(), "NetworkPolicy").values()
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]


def test_webhook_pods_have_an_egress_policy_that_keeps_them_off_private_ranges() -> None:
    deployment = by_kind(base_documents(), "Deployment")["tacit-webhooks"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    egress = [p for p in _policies_for(labels) if "Egress" in p["spec"]["policyTypes"]]
    assert egress, "no egress NetworkPolicy selects the webhook pods"
    for policy in egress:
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, "every egress rule names its ports"
            assert "to" in rule, "every egress rule names its destinations"
            for peer in rule["to"]:
                if "ipBlock" not in peer:
                    assert ports <= {53}, "only DNS may go to pods"
                    continue
                block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                excluded = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except", [])]
                if block.prefixlen == 0 and block.version == 4:
                    assert ports == {443}
                    for net in PRIVATE:
                        assert any(ipaddress.ip_network(net).subnet_of(e) for e in excluded), net  # type: ignore[arg-type]
                elif block.prefixlen == 0:
                    assert ports == {443}
                    for net in ("fc00::/7", "fe80::/10", "::1/128"):
                        assert any(ipaddress.ip_network(net).subnet_of(e) for e in excluded), net  # type: ignore[arg-type]
                else:
                    assert block.is_private and ports <= {5432, 6379}


def test_webhook_pods_hold_no_decryption_key() -> None:
    spec = pod_spec(by_kind(base_documents(), "Deployment")["tacit-webhooks"])
    assert not any("hpke" in str(v).lower() for v in spec.get("volumes", []))


def test_the_namespace_denies_by_default_and_every_role_is_allowed_its_own_traffic() -> None:
    docs = base_documents()
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["tacit-default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    workloads = [*by_kind(docs, "Deployment").values(), *by_kind(docs, "Job").values()]
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        allowed = [p for p in _policies_for(labels) if p["spec"]["podSelector"]]
        assert allowed, f"{w['metadata']['name']} has no allow policy"
        assert any(rule.get("ports") for p in allowed for rule in p["spec"].get("egress", [])), w[
            "metadata"
        ]["name"]


def _secret_refs(spec: dict) -> set[str]:
    names = set()
    for c in spec["containers"]:
        names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
    names |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    return names


def test_each_role_has_secrets_of_its_own_and_the_webhook_pool_shares_none() -> None:
    docs = base_documents()
    refs = {name: _secret_refs(pod_spec(d)) for name, d in by_kind(docs, "Deployment").items()}
    refs |= {
        name: _secret_refs(j["spec"]["template"]["spec"])
        for name, j in by_kind(docs, "Job").items()
    }
    assert refs["tacit-webhooks"] == {"tacit-webhooks-env"}
    others = set().union(*(v for k, v in refs.items() if k != "tacit-webhooks"))
    assert not refs["tacit-webhooks"] & others
    assert refs["tacit-api"] == {"tacit-api-env"} and refs["tacit-relay"] == {"tacit-relay-env"}
