"""How reading cost grows with the width of the image (``speed.py --lines``): milliseconds per
image at batch 1 on one thread, PyTorch and ONNX Runtime, at the model's height, for a word
(192 pixels), half a line and a 1,500-pixel line, on random input. The model is any CRNN;
for an any-width model (``[data] width = 0``) these are the widths it reads lines at."""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

WIDTHS = {"word": 192, "half line": 750, "line": 1500}  # input pixels at the model's height


def time_widths(model: torch.nn.Module, session, config, runs: int, timer: Callable) -> list[dict]:
    """One row per back end and width: median and minimum ms per image, and ms per 100
    pixels of width (flat when the cost grows linearly). ``session``: an ONNX Runtime session
    of the same model with one thread; ``timer(calls, runs, warmup)``: name -> call times."""
    torch.set_num_threads(1)
    model = model.eval()
    d = config.data
    rows = []
    for kind, width in WIDTHS.items():
        x = torch.rand(1, d.channels, d.height, width)

        def pytorch(x=x):
            with torch.inference_mode():
                return model(x)

        calls = {"PyTorch inference_mode": pytorch,
                 "ONNX Runtime": lambda feed={"images": x.numpy()}: session.run(None, feed)}
        for backend, times in timer(calls, runs, warmup=3).items():
            ms = 1000 * statistics.median(times)
            rows.append({"backend": backend, "input": kind, "width": width, "ms_per_image_batch1_1thread": ms,
                         "ms_per_image_batch1_1thread_min": 1000 * min(times), "ms_per_100_px": 100 * ms / width})
    return rows


def markdown(rows: list[dict]) -> list[str]:
    """The rows as a Markdown table."""
    lines = ["| back end | input | width px | ms/image, batch 1, 1 thread: median (min) | ms per 100 px |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {r['backend']} | {r['input']} | {r['width']} | {r['ms_per_image_batch1_1thread']:.2f} "
              f"({r['ms_per_image_batch1_1thread_min']:.2f}) | {r['ms_per_100_px']:.3f} |" for r in rows]
    return lines
