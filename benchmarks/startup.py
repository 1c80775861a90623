"""How long crnn-ocr takes to start and how fast each bundled model reads: a script, not a test.

Start-up, each from a cold process (the median of ``--runs``, after one warm-up run that fills
the file cache): ``python -c "import crnn_ocr"``, ``crnn-ocr --help``, ``crnn-ocr models`` and
``crnn-ocr predict --model captcha-v2 one.png``. Reading, in this process on one thread with
the greedy decoder: milliseconds per image at batch 1 and images per second at batch 64, for
every bundled model on images of its kind (captchas of ../shared/data/captcha_v2/val, IAM
words of ../shared/data/iam_words, lines rendered with system fonts).

    OMP_NUM_THREADS=1 python benchmarks/startup.py                    # this checkout
    OMP_NUM_THREADS=1 python benchmarks/startup.py --src OTHER/src    # another checkout's code

On a shared machine give it one core (OMP_NUM_THREADS=1) and read the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
ENTRY = "import sys; from crnn_ocr.cli.entry import main; sys.exit(main())"


def cold(argv: list[str], runs: int, env: dict) -> float:
    """The median wall seconds of ``argv`` as a new process (after a warm-up run)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def start_up(python: str, src: str | None, runs: int, image: Path) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if src:
        env["PYTHONPATH"] = src
    command = [python, "-c", ENTRY]
    return {"import crnn_ocr": cold([python, "-c", "import crnn_ocr"], runs, env),
            "crnn-ocr --help": cold(command + ["--help"], runs, env),
            "crnn-ocr models": cold(command + ["models"], runs, env),
            "crnn-ocr predict --model captcha-v2 one.png": cold(
                command + ["predict", "--model", "captcha-v2", "--threads", "1", str(image)], runs, env)}


def images_for(name: str, n: int) -> list:
    """Images of the kind a bundled model reads (as benchmarks/onnx_parity.py picks them)."""
    sys.path.insert(0, str(HERE))
    from onnx_parity import images_for as parity_images

    return parity_images(name, n)


def reading_speed(n: int) -> dict[str, dict]:
    """ms per image at batch 1 and images/s at batch 64, one thread, greedy decoding."""
    from crnn_ocr.hub import registry
    from crnn_ocr.reading.recognizer import Recognizer

    results = {}
    for name in registry.models():
        try:
            rec = Recognizer.load(name, threads=1)
        except TypeError:  # an old checkout's signature
            rec = Recognizer.load(name)
        images = images_for(name, n)
        rec.read(images[:8], decoder="greedy")  # warm-up
        start = time.perf_counter()
        for im in images[: n // 2]:
            rec.read([im], decoder="greedy", batch_size=1)
        single = (time.perf_counter() - start) / (n // 2) * 1000
        start = time.perf_counter()
        rec.read(images, decoder="greedy", batch_size=64)
        bulk = len(images) / (time.perf_counter() - start)
        results[name] = {"backend": type(rec.model).__name__, "ms_per_image_batch_1": round(single, 2),
                         "images_per_s_batch_64": round(bulk, 1), "images": len(images)}
        print(name, results[name], flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable, help="the interpreter to time (e.g. a core-only venv's)")
    p.add_argument("--src", help="PYTHONPATH for the timed commands (another checkout's src/)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--images", type=int, default=128, help="images per model for the reading speed")
    p.add_argument("--skip-reading", action="store_true", help="start-up only")
    p.add_argument("--out", help="write the figures here as JSON")
    args = p.parse_args()
    image = next(iter(sorted((DATA / "captcha_v2" / "val").glob("*.png"))), None)
    if image is None:
        raise SystemExit(f"no captcha image in {DATA / 'captcha_v2' / 'val'}")
    results = {"start_up_seconds": start_up(args.python, args.src, args.runs, image)}
    for what, seconds in results["start_up_seconds"].items():
        print(f"{what}: {seconds:.3f} s", flush=True)
    if not args.skip_reading:
        if args.src:
            sys.path.insert(0, args.src)
        results["reading"] = reading_speed(args.images)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
