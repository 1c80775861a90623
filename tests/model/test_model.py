"""The CRNN's shapes, its CTC length check and the ImageNet-weights path (served from a local
TORCH_HOME, so no download happens)."""
from pathlib import Path

import pytest
import torch
import torchvision

from crnn_ocr.model.crnn import CRNN


@pytest.mark.parametrize("backbone", ["simple", "resnet18"])
@pytest.mark.parametrize("height, width, columns", [(32, 128, 32), (48, 192, 48)])
def test_output_is_one_distribution_per_column(backbone, height, width, columns):
    model = CRNN(num_classes=12, backbone=backbone, height=height, width=width).eval()
    out = model(torch.rand(3, 1, height, width))
    assert out.shape == (columns, 3, 12)
    assert torch.allclose(out.exp().sum(dim=2), torch.ones(columns, 3), atol=1e-5)


def test_model_refuses_labels_longer_than_its_output_allows():
    with pytest.raises(ValueError, match="32 output columns.*needs 40"):
        CRNN(num_classes=5, height=32, width=128, max_label_length=40)


def test_simple_backbone_widths_set_its_size():
    lean = CRNN(num_classes=12, height=48, width=192, cnn_channels=(16, 32, 64, 64, 128), rnn_hidden=96).eval()
    default = CRNN(num_classes=12, height=48, width=192).eval()
    assert lean.cnn[-1][0].out_channels == 128 and lean.rnn.input_size == 128 * 3
    assert sum(p.numel() for p in lean.parameters()) < sum(p.numel() for p in default.parameters()) / 2
    assert lean(torch.rand(2, 1, 48, 192)).shape == (48, 2, 12)
    with pytest.raises(ValueError, match="5 positive channel widths"):
        CRNN(num_classes=12, cnn_channels=(16, 32, 64))


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        CRNN(num_classes=5, backbone="vgg")


@pytest.mark.parametrize("channels", [1, 3])
def test_imagenet_weights_load_through_torchvision_from_torch_home(tmp_path, monkeypatch, channels):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    fake = torchvision.models.resnet18().state_dict()
    fake["conv1.weight"] = torch.full_like(fake["conv1.weight"], 0.01)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(fake, cache / Path(weights.url).name)  # where torchvision would download it to

    model = CRNN(num_classes=5, backbone="resnet18", imagenet=True, channels=channels)
    conv1 = model.cnn[0].weight
    # A gray input sums the three RGB filters, so a gray image gets the RGB image's response.
    assert torch.allclose(conv1, torch.full_like(conv1, 0.01 * 3 / channels))
    assert torch.equal(model.cnn[1].running_var, fake["bn1.running_var"])
    assert model.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406] if channels == 3 else [0.449])


def test_column_max_pool_feeds_the_gru_one_value_per_channel():
    flat = CRNN(num_classes=12, height=48, width=192).eval()
    pooled = CRNN(num_classes=12, height=48, width=192, column_pool="max").eval()
    assert flat.rnn.input_size == 256 * 3 and pooled.rnn.input_size == 256
    x = torch.rand(2, 1, 48, 192)
    assert pooled(x).shape == (48, 2, 12)
    feature_map = pooled.cnn((x - pooled.mean) / pooled.std)
    assert torch.equal(pooled.columns_of(x), feature_map.amax(dim=2))
    with pytest.raises(ValueError, match="unknown column_pool"):
        CRNN(num_classes=12, column_pool="mean")


def test_residual_blocks_start_as_the_identity_and_deepen_the_cnn():
    torch.manual_seed(0)
    plain = CRNN(num_classes=12, height=48, width=192).eval()
    torch.manual_seed(0)
    deep = CRNN(num_classes=12, height=48, width=192, cnn_blocks=(0, 0, 1, 1, 2)).eval()
    blocks = [m for m in deep.cnn if type(m).__name__ == "ResidualBlock"]
    assert len(blocks) == 4
    # Each new block's last BatchNorm scale is 0: the deeper CNN starts as a plain one would.
    assert all(torch.equal(b.body[2].weight, torch.zeros_like(b.body[2].weight)) for b in blocks)
    assert sum(p.numel() for p in deep.parameters()) > sum(p.numel() for p in plain.parameters())
    assert deep(torch.rand(2, 1, 48, 192)).shape == (48, 2, 12)
    with pytest.raises(ValueError, match="residual-block counts"):
        CRNN(num_classes=12, cnn_blocks=(0, 0, -1, 0, 0))


def test_ctc_shortcut_head_gives_a_second_output_only_when_asked():
    model = CRNN(num_classes=12, height=48, width=192, column_pool="max", shortcut=True).eval()
    x = torch.rand(3, 1, 48, 192)
    main_out, short = model(x, shortcut=True)
    assert main_out.shape == short.shape == (48, 3, 12)
    assert torch.allclose(short.exp().sum(dim=2), torch.ones(48, 3), atol=1e-5)
    assert torch.equal(model(x), main_out)  # inference: the main head only
    without = CRNN(num_classes=12, height=48, width=192)
    assert without.shortcut is None and not any(k.startswith("shortcut.") for k in without.state_dict())
    with pytest.raises(ValueError, match="no CTC shortcut head"):
        without(x, shortcut=True)


def test_width_pool_8_halves_the_columns_and_shortcut_pool_coarsens_the_shortcut_only():
    x = torch.rand(2, 1, 48, 192)
    model = CRNN(num_classes=12, height=48, width=192, width_pool=8, shortcut=True, shortcut_pool=2).eval()
    assert model.columns == 24
    main_out, short = model(x, shortcut=True)
    assert main_out.shape == (24, 2, 12) and short.shape == (12, 2, 12)
    odd = CRNN(num_classes=12, height=48, width=200, shortcut=True, shortcut_pool=4).eval()  # 50 columns
    assert odd(torch.rand(1, 1, 48, 200), shortcut=True)[1].shape[0] == 13  # the last, partial window counts
    default = CRNN(num_classes=12, height=48, width=192)
    assert default.columns == 48 and sum(p.numel() for p in default.parameters()) == sum(
        p.numel() for p in CRNN(num_classes=12, height=48, width=192, width_pool=8).parameters())  # same weights
    with pytest.raises(ValueError, match="by 4 or 8"):
        CRNN(num_classes=12, width_pool=2)
    with pytest.raises(ValueError, match="width by 4 only"):
        CRNN(num_classes=12, backbone="resnet18", width_pool=8)
