"""The core install reads: with PyTorch, matplotlib, onnx and safetensors made unimportable,
every bundled model loads and reads, ``predict``, ``models``, ``evaluate`` and ``--help`` work,
and nothing imports torch. Each check runs in a fresh interpreter (``sys.modules`` of this
one holds torch already)."""
import json
import subprocess
import sys
import textwrap

import pytest
from PIL import Image, ImageDraw

from crnn_ocr.hub import registry

# Imports of the extras' packages fail in the child, as in an environment without them.
BLOCK = textwrap.dedent("""
    import sys
    class Blocked:
        names = ("torch", "torchvision", "matplotlib", "onnx", "safetensors", "captcha", "fastapi", "sacrebleu")
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Blocked())
""")
EXTRA_MODULES = ("torch", "torchvision", "matplotlib", "onnx", "safetensors", "sacrebleu")


def run_core(code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that cannot import the extras; it prints the extras'
    modules it loaded on its last line."""
    program = BLOCK + textwrap.dedent(code) + textwrap.dedent(f"""
        print(sorted(m for m in sys.modules if m.split(".")[0] in {EXTRA_MODULES!r}))
    """)
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": "/tmp",
                               "PYTHONPATH": ":".join(p for p in sys.path if p)})


def loaded_extras(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def word_image(path, text="hello", size=(160, 48)):
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).text((10, 15), text, fill=0)
    im.save(path)
    return path


def test_import_loads_no_extra():
    assert loaded_extras(run_core("import crnn_ocr; crnn_ocr.Recognizer")) == "[]"


@pytest.mark.parametrize("name", sorted(registry.models()))
def test_every_bundled_model_reads_without_pytorch(name, tmp_path):
    image = word_image(tmp_path / "word.png")
    done = run_core(f"""
        from crnn_ocr import Recognizer
        rec = Recognizer.load({name!r}, threads=1)
        (reading,) = rec.read([{str(image)!r}], decoder="greedy", details=True)
        assert isinstance(reading.text, str) and 0 <= reading.confidence <= 1 and reading.error is None
        assert rec.read([b"not an image"])[0].error == "not an image"
    """)
    assert loaded_extras(done) == "[]"


def test_word_decoders_run_on_numpy(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("hello\nworld\n")
    image = word_image(tmp_path / "word.png")
    done = run_core(f"""
        from crnn_ocr import Recognizer
        rec = Recognizer.load("synth-words", threads=1, lexicon=[{str(words)!r}], lm=[{str(words)!r}])
        for decoder in ("lexicon", "lm"):
            (reading,) = rec.read([{str(image)!r}], decoder=decoder, details=True)
            assert reading.error is None
    """)
    assert loaded_extras(done) == "[]"


def test_commands_of_the_core_install(tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    for text in ("2b827", "3bnyf"):
        word_image(folder / f"{text}.png", text, (200, 50))
    out = tmp_path / "eval"
    done = run_core(f"""
        from crnn_ocr.cli.main import main
        assert main(["models"]) == 0
        assert main(["predict", "--model", "captcha-v2", "--threads", "1", "--format", "jsonl",
                     {str(folder)!r}]) == 0
        assert main(["evaluate", "--model", "captcha-v2", "--threads", "1", "--data", {str(folder)!r},
                     "--out", {str(out)!r}]) == 0
    """)
    assert loaded_extras(done) == "[]"
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["n"] == 2 and scores["bleu"] is None  # character BLEU comes with the training extra
    report = (out / "report.md").read_text()
    assert "need matplotlib" in report and "n/a (needs sacrebleu" in report and not (out / "samples.png").exists()


def test_help_loads_neither_numpy_models_nor_extras():
    done = run_core("""
        from crnn_ocr.cli.main import main
        try:
            main(["--help"])
        except SystemExit as e:
            assert e.code == 0
    """)
    assert loaded_extras(done) == "[]"


@pytest.mark.parametrize("command", [["train"], ["demo"], ["export", "--model", "captcha-v2", "--onnx", "x.onnx"]])
def test_a_command_that_needs_an_extra_says_which_in_one_line(command):
    done = run_core(f"""
        from crnn_ocr.cli.main import main
        code = main({command!r})
        print(code)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2] == "2"
    assert done.stderr.strip() == (f"crnn-ocr: error: `{command[0]}` needs the training extra: "
                                   "pip install 'crnn-ocr[train]'")


def test_a_pytorch_checkpoint_on_the_core_install_says_what_to_install(tmp_path):
    image = word_image(tmp_path / "word.png")
    done = run_core(f"""
        from crnn_ocr.cli.main import main
        print(main(["predict", "--model", {str(tmp_path / "best.pt")!r}, {str(image)!r}]))
    """)
    assert done.returncode == 0 and done.stdout.splitlines()[-2] == "2"
    assert "needs PyTorch" in done.stderr and "pip install 'crnn-ocr[train]'" in done.stderr
    assert done.stderr.count("\n") == 1
