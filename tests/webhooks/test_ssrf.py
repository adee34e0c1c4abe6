"""The SSRF guard: private, loopback, link-local and metadata targets are refused unless allowlisted."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.webhooks.ssrf import check_url

PUBLIC = "93.184.216.34"


def public(_host: str, _port: int) -> list[str]:
    return [PUBLIC]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://192.168.1.10/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[fd00:ec2::254]/hook",
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as e:
        check_url(url, allowlist=())
    assert e.value.code == "webhook_url_refused"


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    # localhost resolves through the system resolver (/etc/hosts) to a loopback address
    with pytest.raises(InvalidInput) as e:
        check_url("https://localhost:8443/hook", allowlist=())
    assert e.value.code == "webhook_url_refused"


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_url("https://mixed.example/hook", resolver=lambda h, p: [PUBLIC, "10.1.2.3"])


def test_http_needs_the_allowlist() -> None:
    with pytest.raises(InvalidInput) as e:
        check_url("http://hooks.example/x", resolver=public)
    assert "https" in e.value.message
    target = check_url("https://hooks.example/x", resolver=public)
    assert target.addresses == (PUBLIC,) and target.port == 443 and not target.allowlisted


def test_the_operator_allowlist_permits_loopback_over_http() -> None:
    target = check_url("http://127.0.0.1:9000/hook", allowlist=["127.0.0.1/32"])
    assert target.allowlisted and target.addresses == ("127.0.0.1",) and target.port == 9000
    with pytest.raises(InvalidInput):  # the allowlist is exact: ::1 is not 127.0.0.1
        check_url("http://[::1]:9000/hook", allowlist=["127.0.0.1/32"])


@pytest.mark.parametrize(
    "url", ["ftp://x.example/", "https://", "https://user:pw@x.example/", "not a url"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, resolver=public)


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidInput) as e:
        check_url("https://no-such-host.invalid/hook")
    assert e.value.code == "webhook_url_unresolvable"
