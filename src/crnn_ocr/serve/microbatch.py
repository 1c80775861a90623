"""Micro-batching for ``crnn-ocr serve``: the images of concurrent requests read in one
forward pass.

One queue per model, emptied by one task: requests that arrive while the model is busy, or
within ``max_wait_ms`` of each other, are read together, and each request gets its own
results back in order. Reading is ``Recognizer.read`` in its two halves, on two threads:
``prepare`` (decode and resize) as each request arrives, one image at a time, the requests
taking turns; ``_read_prepared`` (one forward pass) for a whole batch, so the next requests
are prepared while the model reads. A full queue refuses a request with ``RequestError`` 503;
a request cancelled (its client gone) leaves the queue. Nothing here knows HTTP beyond the
statuses of its refusals.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from PIL import Image

from crnn_ocr.reading.recognizer import Prepared, Reading, Recognizer
from crnn_ocr.serve.options import Batching


class RequestError(Exception):
    """A request the service refuses: answered with ``status`` and a JSON error."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def read_images(recognizer: Recognizer, images: list[Prepared | Reading], details: bool) -> list[dict]:
    """The prepared images read: ``{"text", "confidence"}`` per image, in order, with
    ``"chars"`` when ``details`` (and ``"error"`` for one that could not be prepared)."""
    return [r.to_dict() for r in recognizer._read_prepared(images, details=details)]


def prepare_one(recognizer: Recognizer, image: Image.Image) -> Prepared | Reading:
    """``image`` decoded and reduced to the model's input (``Recognizer._prepare``), then
    closed: its decoded pixels are freed now, not when the request is answered."""
    try:
        return recognizer._prepare([image])[0]
    finally:
        image.close()


@dataclass
class _Job:
    images: list[Prepared | Reading]
    details: bool
    future: asyncio.Future
    arrived: float


class MicroBatcher:
    """One queue per model, emptied by one task that reads queued requests together.

    Reading runs in ``executor`` (one thread shared by all models: on a CPU, two forward
    passes at once only slow each other down), preparing in ``prepare_executor`` (one thread
    too), so the event loop keeps accepting requests.
    """

    def __init__(self, recognizer: Recognizer, batching: Batching, executor: ThreadPoolExecutor,
                 prepare_executor: ThreadPoolExecutor):
        self.recognizer, self.batching, self.executor = recognizer, batching, executor
        self.prepare_executor = prepare_executor
        self.jobs: deque[_Job] = deque()
        self.waiting = 0  # images queued, not yet taken into a batch
        self.preparing = 0  # images being prepared, queued next
        self.arrival = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def read(self, images: list[Image.Image], details: bool) -> list[dict]:
        """Prepare ``images``, queue them and wait for their results; ``RequestError`` 503
        when the queue is full (images being prepared count), 400 when an image cannot be
        decoded. Images are prepared one at a time, each closed as soon as it is reduced to the
        model's input (so a request holds one decoded image at most), and the images of
        concurrent requests take turns. Cancelled (its client gone), a request stops being
        prepared after the image in hand and leaves the queue at once: nobody's work is read."""
        if self.waiting + self.preparing + len(images) > self.batching.max_queue:
            raise RequestError(503, "queue_full", f"the queue is full ({self.waiting + self.preparing} images "
                               "waiting); try again shortly")
        loop = asyncio.get_running_loop()
        self.preparing += len(images)
        prepared: list[Prepared] = []
        try:
            for i, image in enumerate(images):
                p = await loop.run_in_executor(self.prepare_executor, prepare_one, self.recognizer, image)
                if isinstance(p, Reading):  # refused now: the model never reads a request that fails
                    raise RequestError(400, "not_an_image", f"image {i}: {p.error}")
                prepared.append(p)
                self.preparing -= 1
        finally:
            self.preparing -= len(images) - len(prepared)
            for image in images[len(prepared) + 1:]:  # the one in hand is closed by its thread
                image.close()
        job = _Job(prepared, details, loop.create_future(), time.monotonic())
        self.jobs.append(job)
        self.waiting += len(images)
        self.arrival.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            if job in self.jobs:  # still queued: dropped, and no longer counted against the queue
                self.jobs.remove(job)
                self.waiting -= len(job.images)
            raise

    async def _run(self) -> None:
        max_batch, max_wait = self.batching.max_batch, self.batching.max_wait_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            self.arrival.clear()
            if not self.jobs:
                await self.arrival.wait()
                continue
            # give requests arriving together a moment to join, unless the batch is full already
            deadline = self.jobs[0].arrived + max_wait
            while self.waiting < max_batch and (left := deadline - time.monotonic()) > 0:
                self.arrival.clear()
                try:
                    await asyncio.wait_for(self.arrival.wait(), left)
                except TimeoutError:
                    break
            batch = [self.jobs.popleft()]
            size = len(batch[0].images)
            while self.jobs and size + len(self.jobs[0].images) <= max_batch:
                size += len(self.jobs[0].images)
                batch.append(self.jobs.popleft())
            self.waiting -= size
            images = [im for job in batch for im in job.images]
            details = any(job.details for job in batch)
            try:
                results = await loop.run_in_executor(self.executor, read_images, self.recognizer, images, details)
            except Exception as e:  # a model failure fails these requests, not the service
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            start = 0
            for job in batch:
                part = results[start : start + len(job.images)]
                start += len(job.images)
                if not job.details:
                    part = [{k: v for k, v in r.items() if k != "chars"} for r in part]
                if not job.future.done():  # done: the client went away
                    job.future.set_result(part)


@asynccontextmanager
async def running(recognizers: Mapping[str, Recognizer], batching: Batching, batchers: dict[str, MicroBatcher]):
    """A started ``MicroBatcher`` per recognizer, put into ``batchers`` by name (one read and
    one prepare thread shared by all), for the duration of the ``async with``; stopped after
    (when the server has answered every request)."""
    with ThreadPoolExecutor(1, thread_name_prefix="crnn-ocr-read") as executor, \
            ThreadPoolExecutor(1, thread_name_prefix="crnn-ocr-prepare") as prepare_executor:
        for name, rec in recognizers.items():
            batchers[name] = MicroBatcher(rec, batching, executor, prepare_executor)
            batchers[name].start()
        try:
            yield batchers
        finally:
            for batcher in batchers.values():
                await batcher.stop()
