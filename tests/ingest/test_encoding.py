"""The live encodes handed to the thread pool together (web.recordings.live.encoding)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from web.recordings.live.encoding import Encodes


def test_encodes_due_together_run_in_one_thread_in_order() -> None:
    ran: list[tuple[str, int]] = []

    def job(name: str) -> None:
        ran.append((name, threading.get_ident()))

    async def main() -> None:
        encodes = Encodes(gather_s=0.01)
        await asyncio.gather(*(encodes.run(lambda n=n: job(n)) for n in "abc"))

    asyncio.run(main())
    assert [name for name, _ in ran] == ["a", "b", "c"]
    assert len({thread for _, thread in ran}) == 1
    assert ran[0][1] != threading.get_ident()


def test_each_caller_gets_its_own_failure() -> None:
    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    async def main() -> tuple[BaseException | None, ...]:
        encodes = Encodes(gather_s=0.01)
        outcomes = await asyncio.gather(
            encodes.run(lambda: None), encodes.run(full_disk), return_exceptions=True
        )
        return tuple(outcomes)

    fine, failed = asyncio.run(main())
    assert fine is None
    assert isinstance(failed, OSError)
    assert failed.errno == 28


def test_a_cancelled_caller_s_job_is_not_run() -> None:
    ran: list[str] = []

    async def main() -> None:
        encodes = Encodes(gather_s=0.05)
        kept = encodes.run(lambda: ran.append("kept"))
        dropped = encodes.run(lambda: ran.append("dropped"))
        dropped.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await dropped

    asyncio.run(main())
    assert ran == ["kept"]


def test_later_batches_and_a_new_event_loop_are_handed_over_too() -> None:
    encodes = Encodes(gather_s=0.01)
    ran: list[int] = []

    async def main(base: int) -> None:
        await encodes.run(lambda: ran.append(base))
        await encodes.run(lambda: ran.append(base + 1))

    asyncio.run(main(0))
    asyncio.run(main(10))
    assert ran == [0, 1, 10, 11]
