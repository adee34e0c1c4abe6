"""NetworkPolicies: the webhook pool, which calls tenant-chosen URLs, reaches only DNS, the
databases and public addresses on 443."""

from __future__ import annotations

import ipaddress

from .deploy_files import base_documents, by_kind, pod_spec

PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "100.64.0.0/10"]


def _policies_for(labels: dict[str, str]) -> list[dict]:
    return [
        p for p in by_kind(base_documents(), "NetworkPolicy").values()
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]


def test_webhook_pods_have_an_egress_policy_that_keeps_them_off_private_ranges() -> None:
    deployment = by_kind(base_documents(), "Deployment")["tacit-webhooks"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    egress = [p for p in _policies_for(labels) if "Egress" in p["spec"]["policyTypes"]]
    assert egress, "no egress NetworkPolicy selects the webhook pods"
    for policy in egress:
        for rule in policy["spec"]["egress"]:
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
