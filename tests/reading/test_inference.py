"""Reading each image at its own width: content widths, crop widths, trimmed inference batches."""
import numpy as np
from PIL import Image

from crnn_ocr.reading.images import content_widths, resize_and_pad
from crnn_ocr.reading.infer import batches, crop_width


def word_images(widths: list[int], height: int = 32, width: int = 128) -> np.ndarray:
    """White images with a dark bar over the first ``w`` pixels, padded like real ones."""
    out = []
    for w in widths:
        im = Image.new("L", (width, height), 255)
        im.paste(0, (0, 8, w, 24))
        out.append(resize_and_pad(im.crop((0, 0, w + 2, height)), height, width, 1))
    return np.stack(out)


def test_content_width_is_where_the_padding_starts():
    images = word_images([10, 50, 120])
    assert content_widths(images).tolist() == [10, 50, 120]
    assert crop_width(2, 128) == 16 and crop_width(10, 128) == 20 and crop_width(50, 128) == 60
    assert crop_width(121, 128) == 128  # never wider than the images


def test_trimmed_batches_cut_every_image_to_its_own_width_and_cover_each_once():
    images = word_images([90, 12, 60, 20, 100, 14, 59, 89])
    seen = []
    for index, batch in batches(images, 2, trim=True):
        seen += index.tolist()
        assert all(crop_width(w, 128) == batch.shape[3] for w in content_widths(images[index]).tolist())
        assert np.array_equal(batch, images[index, :, :, : batch.shape[3]])
    assert sorted(seen) == list(range(8))
    assert seen[:2] == [1, 5] and seen[-1] == 4  # narrowest first, widest last
    assert [b.shape[3] for _, b in batches(images, 4)] == [128, 128]  # untrimmed: as they are
    # A model with one column per 8 pixels (width_pool 8) gets whole columns: 10 + 8 -> 24, not 20.
    assert crop_width(10, 128, stride=8) == 24
    assert all(b.shape[3] % 8 == 0 for _, b in batches(images[:4], 2, trim=True, stride=8))


def test_content_widths_of_a_torch_batch_are_a_torch_tensor():
    import torch

    images = word_images([10, 50])
    assert torch.equal(content_widths(torch.from_numpy(images)), torch.tensor([10, 50]))


def test_the_column_stride_is_read_through_training_wrappers():
    from torch.optim.swa_utils import AveragedModel

    from crnn_ocr.reading.infer import column_stride
    from crnn_ocr.model.crnn import CRNN

    model = CRNN(num_classes=12, height=48, width=192, width_pool=8)
    assert column_stride(model) == column_stride(AveragedModel(model)) == 8  # validation reads the average
    assert column_stride(lambda x: x) == 4  # any other callable: the backbones' default
