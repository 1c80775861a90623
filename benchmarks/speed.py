"""How fast crnn-ocr reads text on a plain CPU, and how fast it trains: a script, not a test.

Inference, for each back end: milliseconds per image at batch 1 on one thread (the latency of
a single request) and images per second at batch 64 on two threads (bulk throughput). The
back ends are PyTorch eager and its usual tricks (``inference_mode``, BatchNorm folded into
the convolutions with ``torch.fx``, TorchScript trace + freeze), and ONNX Runtime on the file
``crnn-ocr export`` writes, with and without its graph optimisations, and after int8 dynamic
quantisation. With ``--data`` (and a trained ``--checkpoint``) it also scores every back end
on that dataset, so the cost of int8 in accuracy is next to its gain in speed.

Training: images per second of the training step (forward, CTC loss, backward, gradient
clipping, AdamW) of the same model at batch 32 (random images with 5-character labels, or
batches of the ``--data`` images with their labels), in plain fp32, under
bf16 autocast, in channels_last, both together (what ``crnn-ocr train`` does by default) and
with ``torch.compile`` on top; next to it the FLOP/s the step achieves (FLOPs counted by
``FlopCounterMode``) and what one big matmul reaches on the same threads, as the ceiling to
compare with.

Writes a JSON file (``--out``) and prints Markdown tables. Speed does not depend on the
weights, so without ``--checkpoint`` it times an untrained model of the default config.

    python benchmarks/speed.py                                   # untrained default model
    python benchmarks/speed.py --checkpoint runs/captcha/best.pt --data data/captcha/test
    python benchmarks/speed.py --config configs/studies/printed_lines.toml --lines   # a word and a line
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import onnxruntime as ort
import torch
import torch.fx.experimental.optimization as fx_optimization
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch.utils.flop_counter import FlopCounterMode

from crnn_ocr.evaluation import metrics

from crnn_ocr.model import checkpoint
from crnn_ocr.model.charset import Charset
from crnn_ocr.config.schema import Config
from crnn_ocr.decoding.ctc import ctc_loss
from crnn_ocr.data.datasets import OCRDataset, width_bucketed
from crnn_ocr.model.export import export_onnx
from crnn_ocr.data.items import Skipped
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.reading.infer import infer
from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.data.sources import evaluation_items
from crnn_ocr.data.synth.captcha import CAPTCHA_ALPHABET
from line_speed import markdown as widths_markdown
from line_speed import time_widths
from machine import cpu_name, seconds

BULK_BATCH, BULK_THREADS = 64, 2
TRAIN_BATCH, TRAIN_THREADS, LABEL_LENGTH = 32, 2, 5
DEFAULT_LOOP = "bf16 autocast + channels_last"  # what crnn-ocr train does on a CPU


def interleaved_times(calls: dict, runs: int, warmup: int, rounds: int = 5) -> dict[str, list[float]]:
    """Wall times of ``runs`` calls of each function of ``calls``, after ``warmup`` calls.

    The functions take turns, ``rounds`` times, so that a load coming and going on a shared
    machine slows every contender alike instead of whichever ran at the wrong moment.
    """
    times = {name: [] for name in calls}
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(max(1, runs // rounds)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# Inference


def torch_variants(model: torch.nn.Module, example: torch.Tensor) -> dict:
    """name -> a function of a float batch, for each way of running the PyTorch model."""
    model = model.eval()
    # BatchNorm folded into the convs; traced for inference (the training-only shortcut head off)
    traced = torch.fx.symbolic_trace(copy.deepcopy(model), concrete_args={"shortcut": False})
    fused = fx_optimization.fuse(traced, no_trace=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and the GRU's tracer warnings
        scripted = torch.jit.freeze(torch.jit.trace(model, example))

    def under(mode, net):
        def run(x):
            with mode():
                return net(x)
        return run

    return {
        "PyTorch eager (no_grad)": under(torch.no_grad, model),
        "PyTorch inference_mode": under(torch.inference_mode, model),
        "PyTorch inference_mode, BN folded (torch.fx)": under(torch.inference_mode, fused),
        "PyTorch TorchScript (trace + freeze)": under(torch.no_grad, scripted),
    }


def ort_session(path: Path, threads: int, optimise: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_variants(files: dict[str, Path]) -> dict:
    """name -> (onnx file, graph optimisations on?) for each ONNX Runtime configuration."""
    return {
        "ONNX Runtime": (files["fp32"], True),
        "ONNX Runtime, graph optimisations off": (files["fp32"], False),
        "ONNX Runtime int8 dynamic (s8 weights)": (files["int8-s8"], True),
        "ONNX Runtime int8 dynamic (u8 weights)": (files["int8-u8"], True),
    }


def time_inference(model: torch.nn.Module, files: dict[str, Path], config: Config, runs: int) -> list[dict]:
    """Batch-1 latency on one thread and batch-64 throughput on two, for every back end."""
    d = config.data
    timings = {}
    for threads, batch, n in ((1, 1, runs), (BULK_THREADS, BULK_BATCH, max(5, runs // 10))):
        torch.set_num_threads(threads)
        x = torch.rand(batch, d.channels, d.height, d.widest)
        calls = {name: (lambda run=run: run(x)) for name, run in torch_variants(model, x[:1]).items()}
        for name, (path, optimise) in ort_variants(files).items():
            session, feed = ort_session(path, threads, optimise), {"images": x.numpy()}
            calls[name] = lambda session=session, feed=feed: session.run(None, feed)
        timings[batch] = interleaved_times(calls, n, warmup=max(2, 10 // batch))
    # The median is the typical call; the minimum, the call that no other process disturbed.
    return [{"backend": name,
             "ms_per_image_batch1_1thread": 1000 * statistics.median(timings[1][name]),
             "ms_per_image_batch1_1thread_min": 1000 * min(timings[1][name]),
             "images_per_s_batch64_2threads": BULK_BATCH / statistics.median(timings[BULK_BATCH][name]),
             "images_per_s_batch64_2threads_max": BULK_BATCH / min(timings[BULK_BATCH][name])}
            for name in timings[1]]


def load_data(config: Config, data: str, label_sep: str, split_ids: list[str] | None) -> OCRDataset:
    d = config.data
    skipped = Skipped()
    items = evaluation_items(data, label_sep or d.label_sep, split_ids, skipped=skipped)
    return OCRDataset(items, d.height, d.width, d.channels, skipped, max_width=d.max_width, levels=d.auto_levels,
                      crop=d.crop_to_ink)


def score_backends(model, charset: Charset, config: Config, files: dict[str, Path], ds: OCRDataset,
                   latency_images: int) -> list[dict]:
    """On the real images of ``data``, for PyTorch and each ONNX file: word accuracy and CER,
    images/s through ``infer`` (what ``Recognizer.read`` runs) at batch 64 on two threads (batched by width for
    a ``trim_padding`` model), and the median ms per image at batch 1 on one thread over the
    first ``latency_images`` images (each at its own width for a ``trim_padding`` model)."""
    from crnn_ocr.reading.onnx import OnnxModel

    gold = [it.text for it in ds.items]
    rows = []
    for name in ["PyTorch", *(f"ONNX Runtime {k}" for k in files)]:
        def backend(threads: int):
            torch.set_num_threads(threads)
            return Recognizer(model if name == "PyTorch" else OnnxModel(files[name.split()[-1]], threads),
                              charset, config)

        def recognize(rec, images, batch):
            return infer(rec.model, images, rec.charset, batch_size=batch, trim=config.data.trim_padding).texts

        rec = backend(BULK_THREADS)
        recognize(rec, ds.images[:BULK_BATCH], BULK_BATCH)  # warm-up
        pred = []
        bulk = len(ds.images) / seconds(lambda: pred.extend(recognize(rec, ds.images, BULK_BATCH)))
        rec = backend(1)
        single = ds.images[:latency_images]
        times = interleaved_times({i: (lambda i=i: recognize(rec, single[i : i + 1], 1)) for i in range(len(single))},
                                  runs=1, warmup=1, rounds=1)
        s = metrics.scores(gold, pred)
        rows.append({"backend": name, "n": s["n"], "word_accuracy": s["word_accuracy"], "cer": s["cer"],
                     "images_per_s_batch64_2threads": bulk,
                     "ms_per_image_batch1_1thread": 1000 * statistics.median(t[0] for t in times.values())})
    return rows


# ---------------------------------------------------------------------------------------------
# Training


MATMUL_N = 2048


def matmul(dtype: torch.dtype):
    """One big square ``torch.mm`` (2 * MATMUL_N**3 FLOPs): the ceiling to compare with."""
    a, b = torch.randn(MATMUL_N, MATMUL_N, dtype=dtype), torch.randn(MATMUL_N, MATMUL_N, dtype=dtype)
    return lambda: torch.mm(a, b)


TRAIN_CYCLE = 6  # batches of real images per timed call


def training_batches(config: Config, charset: Charset, ds: OCRDataset | None) -> dict[str, list]:
    """The batches the training variants cycle through: (float images, targets, lengths).

    Without a dataset, one batch of random images with random 5-character labels. With one,
    ``TRAIN_CYCLE`` batches of its images (seeded sample, labels the charset can encode), as
    the loop sees them (padded to the full width); for a ``trim_padding`` model also the same
    images batched by width and cut, as ``crnn-ocr train`` does.
    """
    d = config.data
    g = torch.Generator().manual_seed(0)
    if ds is None:
        images = torch.rand(TRAIN_BATCH, d.channels, d.height, d.width, generator=g)
        targets = torch.randint(1, len(charset), (TRAIN_BATCH * LABEL_LENGTH,), generator=g)
        return {"padded": [(images, targets, torch.full((TRAIN_BATCH,), LABEL_LENGTH, dtype=torch.long))]}
    # A training dataset of a seeded sample: it drops labels the charset cannot encode or the
    # model cannot fit, and knows the width each image needs, as in crnn-ocr train.
    sample = torch.randperm(len(ds.items), generator=g)[: TRAIN_BATCH * TRAIN_CYCLE].tolist()
    train_ds = OCRDataset([ds.items[i] for i in sample], d.height, d.width, d.channels, Skipped(), charset,
                          CRNN.from_config(config, charset).columns, levels=d.auto_levels, crop=d.crop_to_ink)
    if not len(train_ds):
        raise SystemExit("speed: no --data image has a label the model's charset can encode")

    def cut_into_batches(order: list[int], trim: bool) -> list:
        return [(images.float().div_(255), targets, lengths) for images, targets, lengths in
                (train_ds.batch(order[k : k + TRAIN_BATCH], trim) for k in range(0, len(order), TRAIN_BATCH))]

    index = list(range(len(train_ds)))
    out = {"padded": cut_into_batches(index, trim=False)}
    if d.trim_padding:
        out["trimmed"] = cut_into_batches(width_bucketed(index, train_ds.widths, TRAIN_BATCH, seed=0), trim=True)
    return out


def training_call(variant: str, config: Config, charset: Charset, batches: list):
    """A function doing one training step per batch of ``batches`` on a fresh model and optimizer."""
    torch.manual_seed(0)
    model = CRNN.from_config(config, charset).train()
    layout = torch.channels_last if "channels_last" in variant else torch.contiguous_format
    model = model.to(memory_format=layout)
    batches = [(x.contiguous(memory_format=layout), t, n) for x, t, n in batches]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    forward = torch.compile(model, dynamic=True) if "torch.compile" in variant else model

    def call():
        for images, targets, lengths in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in variant):
                log_probs = forward(images)
            loss = ctc_loss(log_probs, targets, lengths)  # in fp32 whatever the forward's dtype
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            optimizer.step()

    return call


def time_training(config: Config, charset: Charset, steps: int, compile_too: bool, ds: OCRDataset | None) -> dict:
    """Training images/s of each variant, their FLOP/s, and the matmul ceiling."""
    torch.set_num_threads(TRAIN_THREADS)
    batches = training_batches(config, charset, ds)
    flops = {}
    for kind, batch_list in batches.items():  # the fp32 model's FLOPs: the same work for every variant
        with FlopCounterMode(display=False) as counter:
            training_call("fp32 eager", config, charset, batch_list)()
        flops[kind] = counter.get_total_flops()
    images_per_call = sum(len(lengths) for _, _, lengths in batches["padded"])
    result = {"threads": TRAIN_THREADS, "batch": TRAIN_BATCH, "data": "real" if ds is not None else "random",
              "flops_per_image": flops["padded"] / images_per_call, "variants": []}
    variants = {v: "padded" for v in ["fp32 eager", "bf16 autocast", "channels_last", DEFAULT_LOOP]}
    if compile_too:
        variants[DEFAULT_LOOP + " + torch.compile"] = "padded"
    if "trimmed" in batches:
        variants[DEFAULT_LOOP + " + trim_padding batches"] = "trimmed"
    calls, warmup = {}, {}
    for variant, kind in variants.items():
        calls[variant] = training_call(variant, config, charset, batches[kind])
        t0 = time.perf_counter()
        for _ in range(2):  # compilation, allocator, oneDNN primitive caches
            calls[variant]()
        warmup[variant] = time.perf_counter() - t0
    # The matmuls take their turns among the training steps, so that all see the same machine.
    calls["matmul fp32"], calls["matmul bf16"] = matmul(torch.float32), matmul(torch.bfloat16)
    times = interleaved_times(calls, steps, warmup=0, rounds=min(3, steps))
    call_time = {name: statistics.median(t) for name, t in times.items()}
    result["matmul_fp32_flops"] = 2 * MATMUL_N**3 / call_time["matmul fp32"]
    result["matmul_bf16_flops"] = 2 * MATMUL_N**3 / call_time["matmul bf16"]
    for variant, kind in variants.items():
        result["variants"].append({"variant": variant, "images_per_s": images_per_call / call_time[variant],
                                   "achieved_flops": flops[kind] / call_time[variant], "warmup_s": warmup[variant]})
    return result


# ---------------------------------------------------------------------------------------------
# Report


def markdown(results: dict) -> str:
    lines = [f"Model: {results['model']['backbone']} backbone, {results['model']['parameters'] / 1e6:.2f}M parameters, "
             f"{results['model']['height']}x{results['model']['width'] or 'any width'} input. Machine: "
             f"{results['machine']['cpu']}, {results['machine']['cores']} cores, load average "
             f"{results['machine']['load_before']:.1f} before the run (a shared machine makes timings indicative).", ""]
    if "widths" in results:
        return "\n".join(lines + widths_markdown(results["widths"]))
    lines += ["| back end | ms/image, batch 1, 1 thread: median (min) | images/s, batch 64, 2 threads: median (max) |",
              "|---|---:|---:|"]
    lines += [f"| {r['backend']} | {r['ms_per_image_batch1_1thread']:.2f} ({r['ms_per_image_batch1_1thread_min']:.2f}) "
              f"| {r['images_per_s_batch64_2threads']:.0f} ({r['images_per_s_batch64_2threads_max']:.0f}) |"
              for r in results["inference"]]
    if results.get("accuracy"):
        lines += ["", "On the real images of --data (recognition, preprocessed images in memory; "
                  "decoding included):", "",
                  "| back end | images | word accuracy | CER | ms/image, batch 1, 1 thread "
                  "| images/s, batch 64, 2 threads |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['backend']} | {r['n']} | {100 * r['word_accuracy']:.2f}% | {100 * r['cer']:.2f}% "
                  f"| {r['ms_per_image_batch1_1thread']:.2f} | {r['images_per_s_batch64_2threads']:.0f} |"
                  for r in results["accuracy"]]
    t = results.get("training")
    if t:
        lines += ["", f"Training step at batch {t['batch']}, {t['threads']} threads, on {t.get('data', 'random')} "
                  "images; the model costs "
                  f"{t['flops_per_image'] / 1e9:.2f} GFLOP per image (forward + backward). One big matmul reaches "
                  f"{t['matmul_fp32_flops'] / 1e9:.0f} GFLOP/s in fp32 and {t['matmul_bf16_flops'] / 1e9:.0f} in bf16.",
                  "", "| variant | images/s | x plain fp32 | achieved GFLOP/s | % of fp32 matmul | warm-up s |",
                  "|---|---:|---:|---:|---:|---:|"]
        plain = t["variants"][0]["images_per_s"]
        lines += [f"| {v['variant']} | {v['images_per_s']:.0f} | {v['images_per_s'] / plain:.2f} | "
                  f"{v['achieved_flops'] / 1e9:.1f} | "
                  f"{100 * v['achieved_flops'] / t['matmul_fp32_flops']:.0f}% | {v['warmup_s']:.1f} |"
                  for v in t["variants"]]
    return "\n".join(lines)


def model_files(args, folder: Path) -> tuple[Path, Config]:
    """The checkpoint to time: the one given, or an untrained model of ``--config`` (printable
    ASCII) or of the default config (captcha alphabet) saved in ``folder``."""
    if args.checkpoint:
        return Path(args.checkpoint), Config.from_dict(checkpoint.load(args.checkpoint)["config"])
    config = Config.from_toml(args.config) if args.config else Config()
    charset = Charset("".join(map(chr, range(32, 127))) if args.config else CAPTCHA_ALPHABET)
    model = CRNN.from_config(config, charset)
    path = folder / "untrained.pt"
    checkpoint.save({"model": model.state_dict(), "config": config.to_dict(), "charset": charset.chars,
                     "epoch": 0}, path)
    return path, config


def time_everything(args, results: dict, rec: Recognizer, config: Config, files: dict[str, Path], tmp: Path) -> None:
    """Every back end on random input (and on ``--data``), then training; into ``results``."""
    for name, weight_type in (("int8-s8", QuantType.QInt8), ("int8-u8", QuantType.QUInt8)):
        files[name] = tmp / f"model.{name}.onnx"
        quantize_dynamic(files["fp32"], files[name], weight_type=weight_type)
    ds = load_data(config, args.data, args.label_sep, args.data_ids) if args.data else None
    results["inference"] = time_inference(rec.model, files, config, args.runs)
    if ds is not None:
        results["accuracy"] = score_backends(rec.model, rec.charset, config, files, ds, args.latency_images)
    if not args.no_training:  # the same model as above, freshly initialised
        results["training"] = time_training(config, rec.charset, args.train_steps, not args.no_compile, ds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a trained .pt file (default: an untrained default model)")
    parser.add_argument("--config", help="without --checkpoint: time an untrained model of this config file")
    parser.add_argument("--lines", action="store_true",
                        help="only a word, half a line and a 1,500-pixel line at batch 1 on one thread (line_speed.py)")
    parser.add_argument("--data", help="labelled images to score every back end on (needs --checkpoint)")
    parser.add_argument("--label-sep", default="", help="captcha folders: label = file stem up to this separator")
    parser.add_argument("--data-ids", nargs="+", help="IAM --data: the word-id lists to score on")
    parser.add_argument("--latency-images", type=int, default=300, help="--data images timed one by one")
    parser.add_argument("--out", default="results/speed/speed.json", help="where the JSON goes")
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 calls per back end (batch 64: a tenth)")
    parser.add_argument("--train-steps", type=int, default=9,
                        help="timed training calls per variant (one step, or one per batch of --data images)")
    parser.add_argument("--no-training", action="store_true", help="skip the training measurements")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compilation takes minutes)")
    args = parser.parse_args()
    if args.data and not args.checkpoint:
        parser.error("--data needs a trained --checkpoint")

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pt, config = model_files(args, tmp)
        files = {"fp32": export_onnx(pt, tmp / "model.onnx")}
        rec = Recognizer.load(pt, backend="pytorch")
        results = {
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                        "torch": torch.__version__, "onnxruntime": ort.__version__, "load_before": load_before},
            "model": {"checkpoint": args.checkpoint or f"untrained {args.config or 'default'}",
                      "backbone": config.model.backbone, "parameters": sum(p.numel() for p in rec.model.parameters()),
                      "height": config.data.height, "width": config.data.width},
        }
        if args.lines:
            results["widths"] = time_widths(rec.model, ort_session(files["fp32"], 1), config, args.runs,
                                            interleaved_times)
        else:
            time_everything(args, results, rec, config, files, tmp)
    results["machine"]["load_after"] = os.getloadavg()[0]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
