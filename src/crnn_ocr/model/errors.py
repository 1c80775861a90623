"""The error of a model file that cannot be used, apart from the code that loads one, so that
reading with ONNX Runtime reports it without importing PyTorch."""


class CheckpointError(Exception):
    """A file that is not a usable crnn-ocr checkpoint or model file."""
