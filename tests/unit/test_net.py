"""hub.net: internal addresses are refused unless an administrator allowed them."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from hub.net import checked_addresses, internal_kind, parse_allowed, refused_address


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),  # IPv6 site-local
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:192.168.0.10", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 carrying 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 carrying 10.0.0.1
    ],
)
def test_internal_addresses_are_named(address: str, kind: str) -> None:
    assert internal_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert internal_kind(ipaddress.ip_address(address)) is None
    assert refused_address(address, 993, "") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"])
def test_internal_hosts_are_refused_in_plain_words(host: str) -> None:
    reason = refused_address(host, 143, "")
    assert reason is not None
    assert f"The server {host} is on an internal network" in reason
    assert "HUB_MAIL_ALLOWED_HOSTS" in reason


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("127.0.0.1", 143, "127.0.0.1"),
        ("127.0.0.1", 143, "127.0.0.0/8"),
        ("127.0.0.1", 143, "127.0.0.1:143"),
        ("localhost", 143, "localhost"),  # a name allows whatever it resolves to
        ("LocalHost.", 143, "localhost"),
        ("10.20.30.40", 993, " imap.office.lan , 10.20.0.0/16:993 "),
        ("::1", 143, "::1"),
        ("::1", 143, "[::1]:143"),
        ("fd00::5", 143, "fd00::/8"),
        ("::ffff:10.0.0.1", 143, "10.0.0.0/8"),  # an IPv4 network covers the mapped form
    ],
)
def test_allowed_hosts(host: str, port: int, allowed: str) -> None:
    assert refused_address(host, port, allowed) is None


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("127.0.0.1", 22, "127.0.0.1:143"),  # the port does not match
        ("127.0.0.2", 143, "127.0.0.1"),
        ("10.0.0.1", 143, "10.1.0.0/16"),
        ("::1", 143, "127.0.0.1"),  # IPv4 loopback allowed is not IPv6 loopback
        ("127.0.0.1", 143, "localhost"),  # the name is allowed, not the address typed directly
        ("::1", 22, "[::1]:143"),
    ],
)
def test_allowed_hosts_are_exact(host: str, port: int, allowed: str) -> None:
    assert refused_address(host, port, allowed) is not None


def test_one_internal_address_among_public_ones_refuses_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"mixed.example": ["93.184.216.34", "10.0.0.7"], "public.example": ["93.184.216.34", "2606:4700::1"]}

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    reason = refused_address("mixed.example", 993, "")
    assert reason is not None and "10.0.0.7" in reason
    assert checked_addresses("public.example", 993, "") == ["93.184.216.34", "2606:4700::1"]
    # A name that does not resolve reaches nothing: not refused here, the connection attempt says so.
    assert refused_address("nowhere.example", 993, "") is None
    with pytest.raises(socket.gaierror):
        checked_addresses("nowhere.example", 993, "")


@pytest.mark.parametrize("allowed", ["not a host", "host:0", "host:70000", "[::1", "[::1]143", "a..b", "-:-:-"])
def test_bad_allow_lists_are_errors(allowed: str) -> None:
    with pytest.raises(ValueError):
        parse_allowed(allowed)


def test_empty_allow_list() -> None:
    assert parse_allowed("") == [] and parse_allowed(" , ") == []
