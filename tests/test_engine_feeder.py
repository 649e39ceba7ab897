"""EngineFeeder: Serve's batches that wait for a busy engine run together when it is free."""

import asyncio
import threading

from deployments.engine_feeder import EngineFeeder, Ticket


class GatedEngine:
    """An engine whose generate() blocks until the test opens the gate; records its batches."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()

    def generate(self, requests: list[str], cancelled: list) -> list[str]:
        assert len(cancelled) == len(requests)
        self.threads.add(threading.get_ident())
        self.batches.append(list(requests))
        self.gate.wait(10)
        if "boom" in requests:
            raise RuntimeError("engine failed")
        return [f"reply to {r}" for r in requests]


def tickets(*requests: str) -> list[Ticket]:
    return [Ticket(request) for request in requests]


async def started(engine: GatedEngine, batches: int) -> None:
    for _ in range(10_000):  # a feeder that never calls the engine fails here, not hangs
        if len(engine.batches) >= batches:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"the engine ran {len(engine.batches)} batches, expected {batches}")


def test_batches_that_wait_for_the_engine_run_as_one_in_arrival_order():
    engine = GatedEngine()

    async def scenario():
        feeder = EngineFeeder(engine.generate, max_batch_size=8)
        first = asyncio.create_task(feeder.generate(tickets("a")))
        await started(engine, 1)
        # While "a" runs, Serve hands over three more (small) batches.
        later = [
            asyncio.create_task(feeder.generate(tickets(*b))) for b in (["b", "c"], ["d"], ["e"])
        ]
        await asyncio.sleep(0.05)
        engine.gate.set()
        return await first, [await task for task in later]

    first, later = asyncio.run(scenario())
    assert engine.batches == [["a"], ["b", "c", "d", "e"]]
    assert first == ["reply to a"]
    assert later == [["reply to b", "reply to c"], ["reply to d"], ["reply to e"]]
    assert len(engine.threads) == 1  # every batch on the one engine thread


def test_an_engine_batch_never_exceeds_max_batch_size():
    engine = GatedEngine()
    engine.gate.set()

    async def scenario():
        feeder = EngineFeeder(engine.generate, max_batch_size=3)
        return await asyncio.gather(*(feeder.generate(tickets(str(n))) for n in range(7)))

    results = asyncio.run(scenario())
    assert [len(batch) for batch in engine.batches] == [3, 3, 1]
    assert [r[0] for r in results] == [f"reply to {n}" for n in range(7)]


def test_a_ticket_cancelled_while_waiting_never_reaches_the_engine():
    engine = GatedEngine()

    async def scenario():
        feeder = EngineFeeder(engine.generate, max_batch_size=8)
        first = asyncio.create_task(feeder.generate(tickets("a")))
        await started(engine, 1)
        # One Serve batch of two; the caller of "gone" is cancelled (its deadline passed).
        waiting = tickets("gone", "kept")
        second = asyncio.create_task(feeder.generate(waiting))
        await asyncio.sleep(0.01)
        waiting[0].cancelled = True
        engine.gate.set()
        await first
        return await second

    assert asyncio.run(scenario()) == [None, "reply to kept"]
    assert engine.batches == [["a"], ["kept"]]


def test_a_failed_batch_fails_its_callers_only():
    engine = GatedEngine()

    async def scenario():
        feeder = EngineFeeder(engine.generate, max_batch_size=2)
        failing = asyncio.create_task(feeder.generate(tickets("x", "boom")))
        fine = asyncio.create_task(feeder.generate(tickets("y")))
        engine.gate.set()
        return await failing, await fine

    failing, fine = asyncio.run(scenario())
    assert [type(outcome) for outcome in failing] == [RuntimeError, RuntimeError]
    assert fine == ["reply to y"]


def test_a_row_that_failed_alone_fails_only_its_caller():
    """The engine's per-row outcomes reach each caller as they are: an exception in one row's
    place is that caller's, returned so that the Serve batch it came in does not fail."""

    def generate(requests, cancelled):
        return [ValueError(r) if r == "bad" else f"reply to {r}" for r in requests]

    async def scenario():
        feeder = EngineFeeder(generate, max_batch_size=8)
        return await asyncio.gather(
            feeder.generate(tickets("a", "bad")), feeder.generate(tickets("c"))
        )

    [first, second], third = asyncio.run(scenario())
    assert first == "reply to a" and isinstance(second, ValueError) and third == ["reply to c"]


def test_each_rows_cancel_check_follows_its_own_ticket_while_it_runs():
    batch = tickets("a", "b")
    seen = []

    def generate(requests, cancelled):
        seen.append([check() for check in cancelled])
        batch[1].cancelled = True  # its caller gives up while the engine runs it
        seen.append([check() for check in cancelled])
        return list(requests)

    async def scenario():
        return await EngineFeeder(generate, max_batch_size=8).generate(batch)

    assert asyncio.run(scenario()) == ["a", "b"]
    assert seen == [[False, False], [False, True]]
