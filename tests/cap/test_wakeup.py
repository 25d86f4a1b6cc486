import threading

import trio

from oanix.cap.wakeup import Wakeup


def test_set_from_another_thread_wakes_a_trio_waiter() -> None:
    wake = Wakeup()
    woken: list[int] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async def waiter() -> None:
                for i in range(3):
                    await wake.wait()
                    woken.append(i)

            nursery.start_soon(waiter)
            for _ in range(3):
                await trio.sleep(0.01)
                t = threading.Thread(target=wake.set)
                t.start()
                await trio.to_thread.run_sync(t.join)
                with trio.fail_after(5):
                    while len(woken) < _ + 1:
                        await trio.sleep(0.001)

    trio.run(main)
    assert woken == [0, 1, 2]


def test_a_set_before_wait_is_not_lost() -> None:
    wake = Wakeup()
    wake.set()

    async def main() -> None:
        with trio.fail_after(5):
            await wake.wait()

    trio.run(main)
