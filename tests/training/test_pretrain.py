"""``crnn-ocr pretrain`` and fine-tuning from its ``backbone.safetensors``."""
import pytest
import torch
from safetensors import safe_open

from crnn_ocr.model.charset import Charset
from crnn_ocr.model.checkpoint import CheckpointError, load
from crnn_ocr.model.pretrained import load_pretrained
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.cli.main import main
from crnn_ocr.config.schema import Config
from crnn_ocr.data.synth.text import PRINTABLE, system_fonts


pytestmark = pytest.mark.skipif(
    not system_fonts(), reason="no TrueType/OpenType font with ASCII letters installed "
    "(Debian: apt-get install fonts-dejavu fonts-liberation fonts-freefont-ttf)")


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A tiny pretraining run: 32 words, one epoch, one thread."""
    run = tmp_path_factory.mktemp("pretrain") / "run"
    assert main(["pretrain", "--out", str(run), "--images", "32", "--val-images", "8", "--epochs", "1",
                 "--threads", "1", "--backbone", "resnet18", "--rnn-hidden", "48", "--trim-padding"]) == 0
    return run


def test_pretrain_writes_a_checkpoint_and_float16_weights_with_the_full_ascii_charset(pretrained_run):
    ckpt = load(pretrained_run / "best.pt")
    assert ckpt["charset"] == "".join(sorted(PRINTABLE))
    assert ckpt["config"]["data"]["path"] == "synth:words" and ckpt["config"]["model"]["backbone"] == "resnet18"
    assert ckpt["config"]["model"]["rnn_hidden"] == 48 and ckpt["config"]["data"]["trim_padding"]
    weights = pretrained_run / "backbone.safetensors"
    assert weights.stat().st_size < 20e6
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
        assert meta["charset"] == ckpt["charset"] and float(meta["val_cer"]) >= 0
        assert f.get_tensor("cnn.0.weight").dtype == torch.float16
        assert set(f.keys()) == set(ckpt["model"])


def test_pretrained_weights_load_into_a_model_for_another_charset(pretrained_run):
    config = Config()
    config.model.backbone, config.model.rnn_hidden = "resnet18", 48
    config.data.height, config.data.width = 32, 128  # the size the pretrained run used
    model = CRNN.from_config(config, Charset("0123456789"))
    copied, total, rows = load_pretrained(model, pretrained_run / "backbone.safetensors", Charset("0123456789"))
    assert copied == total - 2  # all but the classifier's weight and bias, which are mapped by character
    assert rows == 11  # the blank and the ten digits, all printable ASCII
    source = load(pretrained_run / "best.pt")["model"]
    own = model.state_dict()
    assert torch.allclose(own["cnn.0.weight"], source["cnn.0.weight"], atol=1e-3)
    assert own["fc.weight"].shape != source["fc.weight"].shape


def test_fine_tuning_starts_from_the_pretrained_weights(pretrained_run, tmp_path, capsys):
    config = tmp_path / "captchas.toml"
    config.write_text("[data]\nheight = 32\nwidth = 128\nsynthetic_train = 32\nsynthetic_val = 8\n"
                      "[train]\nepochs = 1\nbatch_size = 16\nthreads = 1\n")
    weights = pretrained_run / "backbone.safetensors"
    assert main(["train", "--config", str(config), "--backbone", "resnet18", "--pretrained", str(weights),
                 "--rnn-hidden", "48", "--out", str(tmp_path / "run")]) == 0
    assert f"pretrained: copied 106 of 108 tensors from {weights}" in capsys.readouterr().out
    assert load(tmp_path / "run" / "best.pt")["charset"] != load(pretrained_run / "best.pt")["charset"]


def test_a_damaged_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_pretrained(CRNN.from_config(Config(), Charset("ab")), bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(CRNN.from_config(Config(), Charset("ab")), tmp_path / "missing.safetensors")


def test_an_interrupted_pretraining_resumes_to_its_weights_file(pretrained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(pretrained_run, run)
    (run / "backbone.safetensors").unlink()
    flags = ["--images", "32", "--val-images", "8", "--threads", "1", "--backbone", "resnet18", "--rnn-hidden", "48",
             "--trim-padding"]
    assert main(["pretrain", "--out", str(run), "--epochs", "1", *flags]) == 2  # a run is there: refused
    assert "--resume" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(run), "--epochs", "2", "--resume", *flags]) == 0  # one more epoch
    assert "resuming from" in capsys.readouterr().out
    assert load(run / "last.pt")["epoch"] == 2 and (run / "backbone.safetensors").is_file()
