"""Every per-address limit counts a client the same way: an IPv6 host by its /64, an
IPv4 client seen through an IPv6 socket as its IPv4 address."""

from __future__ import annotations

from idp import ratelimit


def _hit(ctx, addr: str) -> bool:
    with ctx.test_request_context("/", environ_base={"REMOTE_ADDR": addr}):
        return ratelimit.exceeded("test_bucket", 2, 60)


def test_an_ipv6_host_is_counted_by_its_64(ctx):
    got = [_hit(ctx, a) for a in ("2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c")]
    assert got == [False, False, True]
    assert not _hit(ctx, "2001:db8:1:3::1")


def test_a_mapped_ipv4_address_is_the_same_client(ctx):
    assert [_hit(ctx, a) for a in ("192.0.2.44", "::ffff:192.0.2.44", "192.0.2.44")] == [
        False, False, True]
