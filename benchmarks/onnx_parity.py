"""Do the bundled ONNX files read as the PyTorch models they were made from?

For each bundled model: the PyTorch model (its pre-ONNX float16 ``.safetensors`` file, or
the ONNX file turned back into PyTorch weights with ``--from-onnx``) and the shipped ONNX file
read the same images with the same preprocessing; the script counts the images whose greedy
texts (and default-decoder texts) differ, and the largest difference of log-probabilities.
Images: captcha-v2 on ../shared/data/captcha_v2/val, handwriting-en and synth-words on IAM
val1 words, printed-en and handwriting-lines-en on lines rendered here with system fonts.

    python benchmarks/onnx_parity.py --old /tmp/old --out results/speed/onnx_parity.json

Needs the training extra (PyTorch). Run with OMP_NUM_THREADS=1 on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.hub import registry

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Reading lines without PyTorch, 2026.",
             "A MOVE to stop Mr. Gaitskell from nominating", "any more Labour life Peers is to be made",
             "at a meeting of Labour M Ps tomorrow.", "Invoice No. 4711: 3 items at $12.50 each",
             "She said: \"we'll see (maybe) tomorrow\"", "Numbers 0123456789 and symbols #%&*+=?",
             "handwriting is harder than print", "Light to install, instant to start."]
FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"]


def rendered_lines(n: int) -> list[Image.Image]:
    """``n`` text lines drawn black on white with the fonts above that exist."""
    fonts = [f for f in FONTS if Path(f).is_file()] or [None]
    out = []
    for i in range(n):
        text, font = SENTENCES[i % len(SENTENCES)], fonts[i % len(fonts)]
        face = ImageFont.truetype(font, 32) if font else ImageFont.load_default()
        w = int(face.getlength(text)) + 40
        im = Image.new("L", (w, 60), 255)
        ImageDraw.Draw(im).text((20, 10), text, fill=0, font=face)
        out.append(im)
    return out


def images_for(name: str, n: int) -> list:
    """Validation images for a bundled model (paths, or rendered PIL images)."""
    if name == "captcha-v2":
        return sorted(p for p in (DATA / "captcha_v2" / "val").iterdir() if p.suffix in (".png", ".jpg"))[:n]
    if name in ("handwriting-en", "synth-words"):
        ids = (DATA / "iam_words" / "splits" / "val1.txt").read_text().split()
        random.Random(0).shuffle(ids)
        paths = [DATA / "iam_words" / "words" / i[:3] / "-".join(i.split("-")[:2]) / f"{i}.png" for i in ids]
        return [p for p in paths if p.is_file()][:n]
    return rendered_lines(n)


def compare(name: str, torch_file: Path, n: int, decoder_sample: int) -> dict:
    from crnn_ocr.model.checkpoint import load_model
    from crnn_ocr.reading.infer import log_probs_of
    from crnn_ocr.reading.recognizer import Recognizer

    info = registry.models()[name]
    onnx_rec = Recognizer.load(name, threads=1)
    model, charset, config = load_model(torch_file)
    torch_rec = Recognizer(model, charset, config)
    images = images_for(name, n)
    a, b = torch_rec.read(images, decoder="greedy"), onnx_rec.read(images, decoder="greedy")
    greedy_diff = sum(x.text != y.text for x, y in zip(a, b))
    conf_diff = max(abs(x.confidence - y.confidence) for x, y in zip(a, b))
    prepared = [p.image for p in onnx_rec._prepare(images[:16])]
    widest = max(p.shape[-1] for p in prepared)
    batch = np.stack([np.pad(p, ((0, 0), (0, 0), (0, widest - p.shape[-1])), constant_values=255) for p in prepared])
    lp_diff = float(np.abs(log_probs_of(model, batch) - log_probs_of(onnx_rec.model, batch)).max())
    result = {"images": len(images), "greedy_texts_differing": greedy_diff, "max_confidence_difference": conf_diff,
              "max_log_prob_difference_16_images": lp_diff, "precision": "float16 weights, float32 compute"}
    if info.decoder != "greedy" and decoder_sample:
        torch_rec = Recognizer(model, charset, config, default_decoder=info.decoder,
                               decoders={info.decoder: onnx_rec._decoder(info.decoder)})
        sample = images[:decoder_sample]
        a, b = torch_rec.read(sample), onnx_rec.read(sample)
        result[f"{info.decoder}_images"] = len(sample)
        result[f"{info.decoder}_texts_differing"] = sum(x.text != y.text for x, y in zip(a, b))
    print(name, result, flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", help="folder of the pre-ONNX NAME.safetensors files (default: the ONNX files themselves)")
    p.add_argument("--n", type=int, default=214, help="images per model")
    p.add_argument("--decoder-sample", type=int, default=100, help="images read with a model's default word decoder")
    p.add_argument("--out", help="write the results here as JSON")
    p.add_argument("models", nargs="*", help="bundled model names (default: all)")
    args = p.parse_args()
    results = {}
    for name in args.models or list(registry.models()):
        source = Path(args.old) / f"{name}.safetensors" if args.old else registry.models()[name].path
        results[name] = compare(name, source, args.n, args.decoder_sample) | {"pytorch_model": source.name}
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
