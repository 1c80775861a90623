"""Bundled models: released from a checkpoint as ONNX files with float16 weights and an index
entry, found by name (``--model NAME``, ``Recognizer.load(NAME)``), read like the checkpoint
they came from, turned back into PyTorch weights to train from; unknown names are a one-line
error listing the bundled ones."""
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from safetensors.torch import save_file

from crnn_ocr.hub import registry

from crnn_ocr.model import checkpoint
from crnn_ocr.model.pretrained import load_pretrained
from crnn_ocr.config.schema import Config
from crnn_ocr.training.release import release
from crnn_ocr.cli.main import main
from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.app import load_recognizers

from conftest import text_image
from conftest import tiny_checkpoint

LABELS = ["abc", "hello", "world"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_pt(tmp_path):
    """An untrained model saved as training saves one, with its training labels."""
    path = tiny_checkpoint(tmp_path / "tiny.pt")
    ckpt = checkpoint.load(path)
    checkpoint.save(ckpt | {"vocabulary": LABELS}, path)
    return path


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """An empty bundled-models folder in place of the package's."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(registry, "MODELS_DIR", folder)
    monkeypatch.setattr(registry, "INDEX", folder / "models.json")
    return folder


def info(name="tiny-v1", **kw):
    return registry.ModelInfo(name=name, file=f"{name}.onnx", reads="test words", charset="abc",
                              height=32, width=128, data="none", licence="MIT", **kw)


@pytest.fixture
def released(models_dir, tiny_pt, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("zebra\nquartz\n")
    release(tiny_pt, info(metrics={"word_accuracy": 0.5, "cer": 0.25}), word_list=words)
    return tiny_pt


def onnx_metadata(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_release_writes_a_float16_file_with_config_charset_and_labels_and_an_index_entry(released, models_dir):
    path = models_dir / "tiny-v1.onnx"
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    assert {a.dtype for a in weights.values() if a.dtype.kind == "f"} == {np.dtype("float16")}
    # every weight by its own name, or (equal values merged by the exporter) through the metadata's aliases
    names = set(weights) | set(json.loads(meta.get("aliases", "{}")))
    assert names == {k for k in checkpoint.load(released)["model"] if not k.endswith("num_batches_tracked")}
    assert meta["charset"] == checkpoint.load(released)["charset"]
    assert json.loads(meta["config"])["data"]["height"] == 32
    assert json.loads(meta["vocabulary"]) == LABELS
    [entry] = json.loads((models_dir / "models.json").read_text())
    assert entry["name"] == "tiny-v1" and entry["word_list"] == "tiny-v1.words.txt"
    assert (models_dir / "tiny-v1.words.txt").read_text() == "zebra\nquartz\n"
    cards = registry.cards_markdown()
    assert "## `tiny-v1`" in cards and "word_accuracy: 50.00%" in cards



def test_a_released_file_records_the_config_without_the_folders_of_the_training_machine(models_dir, tiny_pt):
    ckpt = checkpoint.load(tiny_pt)
    ckpt["config"]["data"].update(path="/home/someone/data/iam_words",
                                  val_ids=["/home/someone/data/iam_words/val1.txt"])
    ckpt["config"]["model"]["pretrained"] = "/home/someone/runs/start/best.pt"
    checkpoint.save(ckpt, tiny_pt)
    config = json.loads(onnx_metadata(release(tiny_pt, info()))["config"])
    assert (config["data"]["path"], config["data"]["val_ids"]) == ("iam_words", ["val1.txt"])
    assert config["model"]["pretrained"] == "best.pt" and "/home/" not in json.dumps(config)

def test_a_released_model_loads_by_name_and_reads_like_its_checkpoint(released):
    by_name, original = Recognizer.load("tiny-v1"), Recognizer.load(released)
    assert type(by_name.model).__name__ == "OnnxModel"  # a bundled model runs on ONNX Runtime
    as_pytorch = Recognizer.load("tiny-v1", backend="pytorch")  # turned back into the PyTorch model
    for (k, a), b in zip(as_pytorch.model.state_dict().items(), original.model.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b.half().to(b.dtype)), k
    images = torch.randint(0, 256, (3, 1, 32, 128), dtype=torch.uint8)
    with torch.inference_mode():
        x = images.float() / 255
        assert torch.allclose(as_pytorch.model(x), original.model(x), atol=2e-2)
        assert np.allclose(by_name.model(x.numpy()), as_pytorch.model(x).numpy(), atol=1e-4)
    assert by_name.charset.chars == original.charset.chars
    assert checkpoint.load_model("tiny-v1")[2].data.width == 128


def test_resolve_names_paths_and_unknown_names(released, tmp_path):
    assert registry.resolve("tiny-v1") == registry.MODELS_DIR / "tiny-v1.onnx"
    assert registry.resolve(released) == released
    assert registry.resolve(tmp_path / "missing.pt") == tmp_path / "missing.pt"  # its loader says "not found"
    with pytest.raises(registry.UnknownModel, match="tiny-v1"):
        registry.resolve("captcha-v9")
    assert list(registry.models()) == ["tiny-v1"]


def test_an_unknown_model_name_is_a_one_line_error_listing_the_names(released, tmp_path, capsys):
    text_image("abc").save(tmp_path / "a.png")
    for command in (["predict", "--model", "nope", str(tmp_path / "a.png")],
                    ["evaluate", "--model", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "e")],
                    ["export", "--model", "nope", "--onnx", str(tmp_path / "m.onnx")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "unknown model 'nope'" in err and "tiny-v1" in err
    assert main(["predict", "--model", "", str(tmp_path / "a.png")]) == 2  # was "`.` is a folder"
    assert "unknown model ''" in capsys.readouterr().err


def test_the_lexicon_and_lm_decoders_use_the_shipped_word_list_and_the_training_labels(released):
    rec = Recognizer.load("tiny-v1", lexicon=[], lm=[])
    assert set(rec.decoders) == {"greedy", "lexicon", "lm"}
    assert set(rec.decoders["lexicon"].words) == set(LABELS) | {"zebra", "quartz"}
    assert rec.read([text_image("abc", (128, 32))], decoder="lexicon")[0].text in set(LABELS) | {"zebra", "quartz"}
    assert rec.read([text_image("abc", (128, 32))], decoder="lm")[0].error is None


def test_a_bundled_models_lm_weights_reach_its_lm_decoder_and_its_card(models_dir, tiny_pt, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("zebra\n")
    release(tiny_pt, info(lm_weights={"alpha": 0.4, "beta": 1.5}), word_list=words)
    lm = Recognizer.load("tiny-v1", lm=[]).decoders["lm"]
    assert (lm.alpha, lm.beta) == (0.4, 1.5)
    assert "`--decoder lm` weights (chosen on validation data): alpha 0.4, beta 1.5" in registry.cards_markdown()
    assert Recognizer.load(tiny_pt, lm=[str(words)]).decoders["lm"].alpha == 1.0  # not bundled: the defaults


def test_a_word_list_another_model_ships_already_is_shared_not_copied(released, models_dir, tiny_pt, tmp_path):
    release(tiny_pt, info("tiny-v2"), word_list=tmp_path / "words.txt")  # the list tiny-v1 ships
    assert registry.models()["tiny-v2"].word_list == "tiny-v1.words.txt"
    assert not (models_dir / "tiny-v2.words.txt").exists()
    assert set(Recognizer.load("tiny-v2", lexicon=[]).decoders["lexicon"].words) >= {"zebra", "quartz"}


def test_a_new_release_may_ship_the_word_list_its_name_ships_already(released, models_dir, tiny_pt):
    shipped = models_dir / "tiny-v1.words.txt"
    release(tiny_pt, info(metrics={"word_accuracy": 0.75}), word_list=shipped)  # was a SameFileError
    assert registry.models()["tiny-v1"].word_list == "tiny-v1.words.txt"
    assert shipped.read_text() == "zebra\nquartz\n"
    assert registry.models()["tiny-v1"].metrics == {"word_accuracy": 0.75}


def test_a_release_refused_for_its_size_keeps_the_model_it_would_replace(released, models_dir, tiny_pt, monkeypatch):
    shipped = models_dir / "tiny-v1.onnx"
    before = shipped.read_bytes()
    monkeypatch.setattr(registry, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(ValueError, match="bundled models would take"):
        release(tiny_pt, info(metrics={"word_accuracy": 0.75}))
    assert shipped.read_bytes() == before  # was deleted: the new file was written over it, then removed
    assert registry.models()["tiny-v1"].metrics == {"word_accuracy": 0.5, "cer": 0.25}
    assert sorted(p.name for p in models_dir.iterdir()) == ["models.json", "tiny-v1.onnx", "tiny-v1.words.txt"]


def test_lm_without_any_words_says_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match="needs words"):
        Recognizer.load(tiny_checkpoint(tmp_path / "bare.pt"), lm=[])


def test_a_safetensors_file_without_crnn_metadata_is_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(checkpoint.CheckpointError, match="not a crnn-ocr model file"):
        Recognizer.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(checkpoint.CheckpointError, match="not a safetensors file"):
        checkpoint.load_model(tmp_path / "junk.safetensors")
    meta = {"config": json.dumps(Config().to_dict()), "charset": "ab", "vocabulary": json.dumps([1, {"a": 1}])}
    save_file({"w": torch.zeros(2)}, str(tmp_path / "odd-words.safetensors"), metadata=meta)
    with pytest.raises(checkpoint.CheckpointError, match="vocabulary of the wrong type"):  # was a TypeError later
        Recognizer.load(tmp_path / "odd-words.safetensors", lexicon=[])


def test_models_command_lists_name_input_size_and_scores_in_100_columns_with_the_card_behind_a_name(released,
                                                                                                 capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-v1" in out and "32x128" in out and "acc 50.00%" in out and "CER 25.00%" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert main(["models", "tiny-v1"]) == 0
    card = capsys.readouterr().out
    assert "Data licence: MIT" in card and "word_accuracy: 50.00%" in card
    assert main(["models", "--details"]) == 0 and "Data licence: MIT" in capsys.readouterr().out
    assert main(["models", "nope"]) == 2 and "unknown model 'nope'" in capsys.readouterr().err


def test_model_flag_on_predict_evaluate_export_and_serve(released, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    text_image("abc").save(folder / "abc.png")
    assert main(["predict", "--model", "tiny-v1", str(folder / "abc.png")]) == 0
    assert capsys.readouterr().out.startswith(f"{folder / 'abc.png'}\t")
    assert main(["evaluate", "--model", "tiny-v1", "--data", str(folder), "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 1
    assert main(["export", "--model", "tiny-v1", "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "m.onnx"), "--data", str(folder),
                 "--out", str(tmp_path / "ev2")]) == 0  # evaluate reads ONNX files too
    assert list(load_recognizers(["tiny-v1"])) == ["tiny-v1"]


def test_release_command_writes_the_model_index_and_cards(models_dir, tiny_pt, tmp_path, capsys):
    scores = tmp_path / "metrics.json"
    scores.write_text(json.dumps({"n": 10, "word_accuracy": 0.9, "cer": 0.02, "wer": 0.1, "bleu": 95.0,
                                  "skipped": {}}))
    docs = tmp_path / "docs" / "models.md"
    assert main(["release", "--checkpoint", str(tiny_pt), "--name", "tiny-v2", "--reads", "test words",
                 "--data", "none", "--licence", "CC0", "--config", "configs/x.toml", "--metrics-from", str(scores),
                 "--speed", "PyTorch=2.0 ms", "--metric", "with the lexicon=95%", "--decoder", "lexicon",
                 "--docs", str(docs)]) == 0
    entry = registry.models()["tiny-v2"]
    assert entry.metrics == {"n": 10, "word_accuracy": 0.9, "cer": 0.02, "wer": 0.1, "bleu": 95.0,
                             "with the lexicon": "95%"}
    assert entry.decoder == "lexicon"
    assert entry.speed == {"PyTorch": "2.0 ms"} and (entry.height, entry.width) == (32, 128)
    assert "## `tiny-v2`" in docs.read_text() and "CC0" in docs.read_text()


def test_the_bundled_models_load_and_fit_the_size_budget():
    bundled = registry.models()
    assert sum(m.path.stat().st_size for m in bundled.values()) <= registry.MAX_TOTAL_BYTES
    for name, m in bundled.items():
        rec = Recognizer.load(name)
        assert rec.charset.chars == m.charset and (rec.config.data.height, rec.config.data.width) == (m.height, m.width)
        # The word and printed models were given auto_levels after training (measured: no validation
        # image read worse); the others predate it and read as they learnt. Only the IAM word model,
        # which learnt IAM's tight crops, cuts an image to its ink (benchmarks/robustness.py).
        assert rec.config.data.auto_levels == (name in ("handwriting-en", "printed-en"))
        assert rec.config.data.crop_to_ink == (name == "handwriting-en")


def test_a_bundled_model_by_name_is_a_starting_point_for_training(released, tmp_path):
    from crnn_ocr.model.charset import Charset
    from crnn_ocr.config.schema import Config
    from crnn_ocr.model.crnn import CRNN

    config_file = tmp_path / "fine_tune.toml"
    config_file.write_text('[data]\nheight = 32\nwidth = 128\n[model]\npretrained = "tiny-v1"\n')
    config = Config.from_toml(config_file)
    assert config.model.pretrained == "tiny-v1"  # a name, not a path beside the config file
    model = CRNN.from_config(config, Charset("ab"))
    copied, total, rows = load_pretrained(model, config.model.pretrained, Charset("ab"))
    source, _ = checkpoint.read_weights(registry.resolve("tiny-v1"))
    assert copied > 0 and rows == 3  # the blank, a and b
    first_conv = next(k for k in source if k.startswith("cnn.") and k.endswith("weight"))
    assert torch.equal(model.state_dict()[first_conv], source[first_conv].float())
    with pytest.raises(registry.UnknownModel, match="unknown model 'no-such-model'"):
        load_pretrained(model, "no-such-model")


def test_a_bundled_models_default_decoder_is_built_on_first_use_and_can_be_overridden(models_dir, tiny_pt, tmp_path,
                                                                                        capsys):
    from crnn_ocr.decoding.lm import LMDecoder

    words = tmp_path / "words.txt"
    words.write_text("zebra\tquartz\n")
    release(tiny_pt, info(lm_weights={"alpha": 0.4, "beta": 1.5}, decoder="lm"), word_list=words)
    rec = Recognizer.load("tiny-v1")
    assert rec.default_decoder == "lm" and "lm" not in rec.decoders  # not built yet
    image = text_image("abc", (128, 32))
    assert rec.read([image], decoder="greedy")[0].error is None and "lm" not in rec.decoders
    rec.read([image])
    lm = rec.decoders["lm"]
    assert isinstance(lm, LMDecoder) and (lm.alpha, lm.beta) == (0.4, 1.5)
    assert "- Default decoder: `lm`" in registry.cards_markdown()
    fresh = Recognizer.load("tiny-v1")
    fresh.read([image])
    assert "lm" in fresh.decoders  # read uses the default decoder
    assert Recognizer.load(tiny_pt).default_decoder == "greedy"  # the file itself, not by name: no card
    image.save(tmp_path / "abc.png")
    (tmp_path / "data").mkdir()
    image.save(tmp_path / "data" / "abc.png")
    for flags, decoding in (([], "character language model"), (["--decoder", "greedy"], None)):
        assert main(["evaluate", "--model", "tiny-v1", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "e"),
                     *flags]) == 0
        assert json.loads((tmp_path / "e" / "metrics.json").read_text()).get("decoding") == decoding
    assert "(lm decoder)" in capsys.readouterr().out
    assert load_recognizers(["tiny-v1"], backend="pytorch")["tiny-v1"].decoders["lm"].alpha == 0.4  # built at start
