"""ONNX export: the exported file computes what the PyTorch model computes, carries its own
charset and preprocessing, runs behind the same ``Recognizer`` API and CLI, and turns back
into the PyTorch model's weights."""
import numpy as np
import onnx
import pytest
import torch

from crnn_ocr.model import checkpoint
from crnn_ocr.model.charset import Charset
from crnn_ocr.cli.main import main
from crnn_ocr.model.crnn import CRNN
from crnn_ocr.config.schema import Config
from crnn_ocr.model.export import export_onnx, onnx_bytes
from crnn_ocr.reading.infer import infer
from crnn_ocr.reading.onnx import OnnxModel
from crnn_ocr.reading.recognizer import Recognizer

from conftest import CHARS, text_image, tiny_checkpoint

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: tiny batches gain nothing from more, and on a busy machine the
    threads of a parallel region wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["simple", "resnet18"])
def exported(request, tmp_path_factory):
    """(PyTorch recognizer, ONNX recognizer) for one backbone."""
    folder = tmp_path_factory.mktemp(request.param)
    pt = tiny_checkpoint(folder / "tiny.pt", request.param)
    onnx_path = export_onnx(pt, folder / "tiny.onnx")
    return Recognizer.load(pt), Recognizer.load(onnx_path, threads=1)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_log_probs_and_texts_match_pytorch(exported, batch):
    torch_rec, onnx_rec = exported
    images = torch.randint(0, 256, (batch, 1, 32, 128), dtype=torch.uint8)
    x = images.float() / 255
    with torch.inference_mode():
        expected = torch_rec.model(x)
    got = onnx_rec.model(x.numpy())
    assert got.shape == expected.shape == (32, batch, len(CHARS) + 1)
    assert np.allclose(got, expected.numpy(), atol=1e-4, rtol=0)
    texts = infer(torch_rec.model, images, torch_rec.charset).texts
    assert infer(onnx_rec.model, images.numpy(), onnx_rec.charset).texts == texts
    assert any(texts), "an untrained model should still emit some characters for the check to mean something"


def test_onnx_width_is_dynamic(exported):
    torch_rec, onnx_rec = exported
    x = torch.rand(2, 1, 32, 200)
    with torch.inference_mode():
        expected = torch_rec.model(x)
    got = onnx_rec.model(x.numpy())
    assert got.shape == (50, 2, len(CHARS) + 1)  # one column per 4 pixels of width
    assert np.allclose(got, expected.numpy(), atol=1e-4, rtol=0)


def test_read_gives_the_same_text_and_confidence_for_both_backends(exported):
    torch_rec, onnx_rec = exported
    images = [text_image("ab12"), text_image("xyz", (200, 50), "RGB")]
    for a, b in zip(torch_rec.read(images), onnx_rec.read(images)):
        assert a.text == b.text and a.confidence == pytest.approx(b.confidence, abs=1e-4)
    assert onnx_rec.read([]) == []


def test_read_with_details_is_the_same_for_both_backends(exported):
    torch_rec, onnx_rec = exported
    images = [text_image("ab12"), b"not an image", text_image("xyz", (200, 50), "RGB")]
    ours, theirs = torch_rec.read(images, details=True), onnx_rec.read(images, details=True)
    assert [r.text for r in ours] == [r.text for r in theirs] and ours[1].error == theirs[1].error
    for a, b in zip(ours, theirs):
        assert [(c.char, c.columns, c.x) for c in a.chars or []] == [(c.char, c.columns, c.x) for c in b.chars or []]
        assert a.confidence == pytest.approx(b.confidence, rel=1e-3)


def test_a_pytorch_model_can_run_on_onnx_runtime_without_a_file(exported, tmp_path):
    torch_rec, _ = exported
    pt = tmp_path / "tiny.pt"
    checkpoint.save({"model": torch_rec.model.state_dict(), "config": torch_rec.config.to_dict(),
                     "charset": torch_rec.charset.chars, "epoch": 1}, pt)
    rec = Recognizer.load(pt, threads=1, backend="onnx")
    assert isinstance(rec.model, OnnxModel) and not list(tmp_path.glob("*.onnx"))
    images = [text_image("ab12"), text_image("xyz", (200, 50), "RGB")]
    ours, theirs = torch_rec.read(images), rec.read(images)
    assert [r.text for r in ours] == [r.text for r in theirs]
    assert [r.confidence for r in ours] == pytest.approx([r.confidence for r in theirs], abs=1e-4)
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        Recognizer.load(pt, backend="tensorrt")


def test_onnx_file_carries_charset_and_preprocessing(tmp_path):
    pt = tiny_checkpoint(tmp_path / "tiny.pt")
    onnx_path = export_onnx(pt, tmp_path / "out" / "tiny.onnx")
    meta = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    assert meta["charset"] == CHARS
    assert (meta["height"], meta["width"], meta["channels"]) == ("32", "128", "1")
    rec = Recognizer.load(onnx_path)
    assert rec.charset == Charset(CHARS)
    assert (rec.config.data.height, rec.config.data.width, rec.config.model.backbone) == (32, 128, "simple")
    graph_ops = {node.op_type for node in onnx.load(onnx_path).graph.node}
    assert "GRU" in graph_ops  # one native node per layer


def test_an_onnx_file_turns_back_into_the_pytorch_weights(tmp_path):
    pt = tiny_checkpoint(tmp_path / "tiny.pt")
    original = checkpoint.load(pt)
    for float16 in (False, True):
        model, charset, config = checkpoint.model_of(original, pt)
        path = tmp_path / f"tiny-{float16}.onnx"
        path.write_bytes(onnx_bytes(model, charset, config, float16=float16, vocabulary=["ab"]))
        back = checkpoint.load(path)
        assert back["charset"] == original["charset"] and back["vocabulary"] == ["ab"]
        weights = checkpoint.inference_weights(original["model"])
        assert set(back["model"]) == set(weights)
        for key, value in weights.items():
            expected = value.half().to(value.dtype) if float16 and value.is_floating_point() else value
            assert torch.equal(back["model"][key], expected), key
        rec = Recognizer.load(path, threads=1)  # the float16 file computes in float32
        x = np.random.default_rng(0).random((2, 1, 32, 128), dtype=np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        assert np.allclose(rec.model(x), expected, atol=5e-2 if float16 else 1e-4)


def test_cli_exports_then_predicts_with_the_onnx_file(tmp_path, capsys):
    pt = tiny_checkpoint(tmp_path / "tiny.pt")
    images = tmp_path / "images"
    images.mkdir()
    for text in ("abc", "123"):
        text_image(text).save(images / f"{text}.png")
    (images / "broken.png").write_bytes(b"not a png")
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(pt), "--onnx", str(onnx_path)]) == 0
    assert onnx_path.is_file()

    outputs = {}
    for model in (pt, onnx_path):
        capsys.readouterr()
        assert main(["predict", "--checkpoint", str(model), "--threads", "1", str(images)]) == 0
        captured = capsys.readouterr()
        outputs[model.suffix] = [line.split("\t") for line in captured.out.strip().splitlines()]
        assert "skipping" in captured.err and "broken.png" in captured.err
    assert [row[0] for row in outputs[".onnx"]] == [str(images / "123.png"), str(images / "abc.png")]
    assert [row[1] for row in outputs[".onnx"]] == [row[1] for row in outputs[".pt"]]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_loading_an_onnx_file_without_crnn_metadata_is_a_clean_error(tmp_path, capsys):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Identity(), (torch.rand(1, 1, 32, 128),), plain, dynamo=False)
    assert main(["predict", "--checkpoint", str(plain), str(tmp_path)]) == 2
    assert "no crnn-ocr metadata" in capsys.readouterr().err
    (tmp_path / "garbage.onnx").write_bytes(b"not onnx")
    assert main(["predict", "--checkpoint", str(tmp_path / "garbage.onnx"), str(tmp_path)]) == 2
    assert "not a usable ONNX model" in capsys.readouterr().err


def test_shortcut_head_is_left_out_of_loaded_models_and_the_onnx_graph(tmp_path):
    config = Config()
    config.data.height, config.data.width = 32, 128
    config.model.column_pool, config.model.ctc_shortcut = "max", 0.1
    config.model.width_pool, config.model.shortcut_pool = 8, 2
    charset = Charset(CHARS)
    model = CRNN.from_config(config, charset, training=True)  # as training builds it
    assert model.shortcut is not None
    checkpoint.save({"model": model.state_dict(), "config": config.to_dict(), "charset": charset.chars,
                     "epoch": 1}, tmp_path / "short.pt")
    loaded, _, _ = checkpoint.load_model(tmp_path / "short.pt")
    assert loaded.shortcut is None and loaded.columns == 128 // 8  # the width pooling is kept
    graph = onnx.load(export_onnx(tmp_path / "short.pt", tmp_path / "short.onnx")).graph
    assert not any("shortcut" in init.name for init in graph.initializer)
    assert sum(node.op_type == "Conv" for node in graph.node) == 5  # the CNN's five, no 1-D head


def test_checkpoints_saved_before_the_new_model_keys_still_load(tmp_path):
    pt = tiny_checkpoint(tmp_path / "old.pt")
    ckpt = torch.load(pt, weights_only=True)
    for key in ("cnn_blocks", "column_pool", "ctc_shortcut", "shortcut_pool", "width_pool"):
        del ckpt["config"]["model"][key]  # a config written before these keys existed
    torch.save(ckpt, pt)
    model, _, config = checkpoint.load_model(pt)
    assert config.model.column_pool == "flatten" and model.rnn.input_size == 256 * 2  # 256 channels x 2 rows, flattened
    assert config.model.width_pool == 4 and config.model.shortcut_pool == 1
