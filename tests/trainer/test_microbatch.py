"""Dynamic micro-batching (dogbreed.server.MicroBatcher): gathered results equal unbatched ones."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from dogbreed.server import MicroBatcher
from dogbreed.serving import handlers
from dogbreed.serving.errors import ServingError
from PIL import Image


@pytest.fixture(scope="module")
def model(tiny_artifact):
    return handlers.load(tiny_artifact)


def requests_for(model, count: int, top_k: int = 3) -> list:
    rng = np.random.default_rng(0)
    decoded = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, size=(40 + i, 50, 3), dtype=np.uint8)).save(buffer, "PNG")
        decoded.append(handlers.decode_request(model, buffer.getvalue(), "image/png", f"top_k={top_k}"))
    return decoded


class CountingRuntime:
    """Wraps a runtime, recording the batch size of every forward pass."""

    def __init__(self, runtime, fail_first: bool = False):
        self.runtime = runtime
        self.name = runtime.name
        self.sizes: list[int] = []
        self.fail_first = fail_first

    def predict_proba(self, batch):
        self.sizes.append(len(batch))
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("simulated inference failure")
        return self.runtime.predict_proba(batch)


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_answers(model, monkeypatch):
    requests = requests_for(model, 8)
    unbatched = [handlers.render(handlers.predict_fn(r, model)) for r in requests]
    counting = CountingRuntime(model.runtime)
    monkeypatch.setattr(model, "runtime", counting)

    async def scenario():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.005, max_queue=64)
        tasks = [asyncio.ensure_future(batcher.predict(r)) for r in requests]
        await asyncio.sleep(0)  # every request is queued before the worker starts
        batcher.start()
        predictions = await asyncio.gather(*tasks)
        await batcher.stop()
        return predictions

    batched = [handlers.render(p) for p in run(scenario())]
    assert counting.sizes == [8]
    for got, expected in zip(batched, unbatched, strict=True):
        assert [p["class_id"] for p in got["predictions"]] == [p["class_id"] for p in expected["predictions"]]
        for a, b in zip(got["predictions"], expected["predictions"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_batches_never_exceed_the_maximum(model, monkeypatch):
    counting = CountingRuntime(model.runtime)
    monkeypatch.setattr(model, "runtime", counting)

    async def scenario():
        batcher = MicroBatcher(model, max_batch_size=3, max_wait_s=0.005, max_queue=64)
        tasks = [asyncio.ensure_future(batcher.predict(r)) for r in requests_for(model, 7)]
        await asyncio.sleep(0)
        batcher.start()
        await asyncio.gather(*tasks)
        await batcher.stop()

    run(scenario())
    assert counting.sizes == [3, 3, 1]


def test_waits_only_for_requests_still_being_decoded(model, monkeypatch):
    counting = CountingRuntime(model.runtime)
    monkeypatch.setattr(model, "runtime", counting)
    first, second = requests_for(model, 2)

    async def scenario(decoding: int):
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=5.0, max_queue=64)
        batcher.start()
        batcher.decoding = decoding  # another request is (or is not) being decoded

        async def late_arrival():
            await asyncio.sleep(0.05)
            batcher.decoding = 0
            return await batcher.predict(second)

        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(batcher.predict(first), late_arrival())
        elapsed = loop.time() - started
        await batcher.stop()
        return results, elapsed

    counting.sizes.clear()
    _, elapsed = run(scenario(decoding=1))
    assert counting.sizes == [2]  # it waited for the one being decoded
    assert elapsed < 2.5  # and ran as soon as it arrived, long before the 5 s deadline
    counting.sizes.clear()
    run(scenario(decoding=0))
    assert counting.sizes == [1, 1]  # nobody on the way: no batching delay


def test_a_failing_batch_fails_its_requests_and_the_batcher_keeps_going(model, monkeypatch):
    counting = CountingRuntime(model.runtime, fail_first=True)
    monkeypatch.setattr(model, "runtime", counting)
    first, second = requests_for(model, 2)

    async def scenario():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.0, max_queue=64)
        batcher.start()
        with pytest.raises(ServingError) as caught:
            await batcher.predict(first)
        prediction = await batcher.predict(second)
        await batcher.stop()
        return caught.value, prediction

    error, prediction = run(scenario())
    assert (error.code, error.status) == ("internal_error", 500)
    assert prediction.breed_probs.shape == (1, 3)


def test_a_full_queue_answers_server_busy(model):
    async def scenario():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.0, max_queue=2)  # worker not started
        pending = [asyncio.ensure_future(batcher.predict(r)) for r in requests_for(model, 2)]
        await asyncio.sleep(0)
        with pytest.raises(ServingError) as caught:
            await batcher.predict(requests_for(model, 1)[0])
        for task in pending:
            task.cancel()
        await batcher.stop()
        return caught.value

    error = run(scenario())
    assert (error.code, error.status) == ("server_busy", 503)


class StallingRuntime:
    """Wraps a runtime; its first forward pass blocks until ``release`` is set (a stalled model)."""

    def __init__(self, runtime):
        import threading

        self.runtime = runtime
        self.name = runtime.name
        self.release = threading.Event()
        self.sizes: list[int] = []

    def predict_proba(self, batch):
        self.sizes.append(len(batch))
        if len(self.sizes) == 1:
            assert self.release.wait(30), "never released"
        return self.runtime.predict_proba(batch)


@pytest.mark.parametrize("first_goes", ["direct", "queued"])
def test_work_whose_caller_gave_up_during_a_stall_is_dropped_not_run(model, monkeypatch, first_goes):
    from dogbreed.serving.handlers import predict_many

    stalling = StallingRuntime(model.runtime)
    monkeypatch.setattr(model, "runtime", stalling)
    first, *abandoned = requests_for(model, 4)

    async def scenario():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.005, max_queue=64)
        batcher.start()
        if first_goes == "direct":
            stalled = asyncio.ensure_future(batcher.run_direct(predict_many, model, [first]))
        else:
            stalled = asyncio.ensure_future(batcher.predict(first))
        while not stalling.sizes:  # the stalled forward pass has started
            await asyncio.sleep(0.005)
        waiting = [asyncio.ensure_future(batcher.predict(r)) for r in abandoned]
        await asyncio.sleep(0.05)
        for task in waiting:  # their clients disconnect, or their deadline passes (wait_for cancels them)
            task.cancel()
        await asyncio.sleep(0.05)
        stalling.release.set()
        await stalled
        await asyncio.gather(*waiting, return_exceptions=True)
        later = await batcher.predict(requests_for(model, 1)[0])  # the server works on
        await batcher.stop()
        return batcher, later

    batcher, later = run(scenario())
    assert stalling.sizes == [1, 1]  # the stalled pass and the later request: nothing abandoned ran
    assert batcher.dropped == 3
    assert len(later.breed_probs) == 1
