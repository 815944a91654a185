"""The SSRF decision cached per name: held for the answer's lifetime, checked again at every new
resolution (a fake resolver and clock; no network)."""

from __future__ import annotations

import asyncio

import pytest

from skillrelay_common.outbound import TargetCache
from skillrelay_common.ssrf import TargetRefused


class FakeDns:
    def __init__(self, answer: list[str]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, int]] = []
        self.release: asyncio.Event | None = None

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if self.release is not None:
            await self.release.wait()
        return list(self.answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(dns: FakeDns, clock: Clock, *, allow_private: bool = False) -> TargetCache:
    return TargetCache(allow_private=allow_private, lifetime=30, resolve=dns, clock=clock)


async def test_an_answer_is_used_for_its_lifetime_by_every_url_of_the_name() -> None:
    dns, clock = FakeDns(["93.184.216.34"]), Clock()
    targets = cache(dns, clock)
    first = await targets.target("http://api.example.com/a")
    await targets.target("http://api.example.com/a")
    other = await targets.target("http://api.example.com:80/b?x=1")
    assert dns.asked == [("api.example.com", 80)]
    assert first.address == other.address == "93.184.216.34"
    assert other.path == "/b?x=1" and other.host_header == "api.example.com"


async def test_a_name_whose_answer_turns_private_is_refused_at_the_next_resolution() -> None:
    dns, clock = FakeDns(["93.184.216.34"]), Clock()
    targets = cache(dns, clock)
    assert (await targets.target("https://api.example.com/x")).address == "93.184.216.34"
    dns.answer = ["10.0.0.7"]
    clock.now += 29  # still the first answer's lifetime: the pinned public address
    assert (await targets.target("https://api.example.com/x")).address == "93.184.216.34"
    clock.now += 2
    with pytest.raises(TargetRefused, match="non-public"):
        await targets.target("https://api.example.com/x")
    assert len(dns.asked) == 2


async def test_a_refusal_is_cached_and_checked_again_after_its_lifetime() -> None:
    dns, clock = FakeDns(["127.0.0.1"]), Clock()
    targets = cache(dns, clock)
    for _ in range(3):
        with pytest.raises(TargetRefused):
            await targets.target("http://inside.example.com/")
    assert len(dns.asked) == 1
    dns.answer = ["93.184.216.34"]
    clock.now += 31
    assert (await targets.target("http://inside.example.com/")).address == "93.184.216.34"


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    dns, clock = FakeDns(["93.184.216.34", "169.254.169.254"]), Clock()
    with pytest.raises(TargetRefused):
        await cache(dns, clock).target("http://mixed.example.com/")


async def test_private_addresses_pass_where_the_operator_allows_them() -> None:
    dns, clock = FakeDns(["127.0.0.1"]), Clock()
    target = await cache(dns, clock, allow_private=True).target("http://localhost:8080/p")
    assert target.connect_url == "http://127.0.0.1:8080/p"


async def test_concurrent_calls_share_one_resolution() -> None:
    dns, clock = FakeDns(["93.184.216.34"]), Clock()
    dns.release = asyncio.Event()
    targets = cache(dns, clock)
    calls = [asyncio.ensure_future(targets.target(f"http://api.example.com/{n}")) for n in range(5)]
    await asyncio.sleep(0)
    dns.release.set()
    results = await asyncio.gather(*calls)
    assert len(dns.asked) == 1 and {r.address for r in results} == {"93.184.216.34"}


async def test_urls_that_may_never_be_called_are_refused_without_resolving() -> None:
    dns, clock = FakeDns(["93.184.216.34"]), Clock()
    targets = cache(dns, clock)
    for url in ("file:///etc/passwd", "gopher://x", "http:///nohost", "http://h:99999/"):
        with pytest.raises(TargetRefused):
            await targets.target(url)
    assert dns.asked == []


async def test_the_real_resolver_refuses_loopback() -> None:
    targets = TargetCache(allow_private=False)
    with pytest.raises(TargetRefused):
        await targets.target("http://localhost:8080/x")
