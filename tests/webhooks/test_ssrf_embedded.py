"""The SSRF guard sees through IPv6 addresses that carry an IPv4 one, keeps metadata
addresses out even of the operator's allowlist, and keeps public targets on 443."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.webhooks.ssrf import check_url


def resolving_to(address: str):  # type: ignore[no-untyped-def]
    return lambda _host, _port: [address]


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254 (metadata)
        "64:ff9b::a00:1",  # NAT64 -> 10.0.0.1
        "64:ff9b:1::7f00:1",  # NAT64 local-use prefix
        "64:ff9b:1:7f00:0:100::",  # local-use /48 layout of 127.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::7f00:1",  # IPv4-compatible ::127.0.0.1
        "::a00:1",  # IPv4-compatible ::10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo: client 127.0.0.1
        "fec0::1",  # site-local
        "fec0:1234::5",
    ],
)
def test_ipv6_addresses_carrying_a_private_ipv4_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput) as e:
        check_url("https://hooks.example/x", resolver=resolving_to(address))
    assert e.value.code == "webhook_url_refused"


def test_an_ipv6_address_carrying_a_public_ipv4_is_still_public() -> None:
    target = check_url("https://hooks.example/x", resolver=resolving_to("64:ff9b::5db8:d822"))
    assert target.addresses == ("64:ff9b::5db8:d822",)  # 93.184.216.34 behind NAT64


@pytest.mark.parametrize(
    ("address", "allowlist"),
    [
        ("169.254.169.254", ["169.254.0.0/16"]),
        ("169.254.169.254", ["0.0.0.0/0"]),
        ("fd00:ec2::254", ["::/0"]),
        ("64:ff9b::a9fe:a9fe", ["::/0"]),  # metadata behind NAT64
        ("100.100.100.200", ["100.64.0.0/10"]),
    ],
)
def test_metadata_addresses_are_refused_even_inside_the_allowlist(
    address: str, allowlist: list[str]
) -> None:
    with pytest.raises(InvalidInput) as e:
        check_url("http://internal.example/x", allowlist=allowlist, resolver=resolving_to(address))
    assert e.value.code == "webhook_url_refused"


@pytest.mark.parametrize("port", [22, 25, 6379, 5432, 8443, 9200])
def test_public_targets_on_other_ports_are_refused(port: int) -> None:
    with pytest.raises(InvalidInput) as e:
        check_url(f"https://hooks.example:{port}/x", resolver=resolving_to("93.184.216.34"))
    assert e.value.code == "webhook_url_refused" and "port" in e.value.message


def test_the_operator_may_allow_more_ports_and_allowlisted_networks_use_any() -> None:
    public = resolving_to("93.184.216.34")
    assert check_url("https://hooks.example:8443/x", ports=[8443], resolver=public).port == 8443
    assert check_url("https://hooks.example/x", resolver=public).port == 443
    inside = check_url(
        "http://10.1.2.3:9000/x", allowlist=["10.0.0.0/8"], resolver=resolving_to("10.1.2.3")
    )
    assert inside.allowlisted and inside.port == 9000


def test_a_refusal_at_delivery_records_the_code_not_what_the_name_resolves_to(
    api, tenant, db, receiver, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from tests.webhooks.conftest import register
    from tests.webhooks.test_delivery import emit_here
    from workers.webhooks.delivery import WebhookRuntime, deliver

    register(api, tenant, receiver.url, receiver=receiver)
    strict = webhook_rt.settings.model_copy(
        update={"webhooks": webhook_rt.settings.webhooks.model_copy(update={"allowlist": []})}
    )
    _, did = emit_here(db, tenant["id"])
    assert deliver(WebhookRuntime(strict, webhook_rt.pool), did) == "retry"
    err = db.execute(
        "SELECT error FROM webhook_attempts WHERE delivery_id = %s", (did,)
    ).fetchone()["error"]
    assert err == "refused: webhook_url_refused"
