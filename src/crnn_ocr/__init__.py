"""crnn-ocr: a small, fast CRNN text recognizer (CNN -> BiGRU -> CTC) in PyTorch.

``train`` and ``evaluate`` are imported on first use, so that reading with a ``Recognizer``
never loads the training-data modules.
"""
from . import lexicon  # registers the "lexicon" decoder
from .charset import Charset
from .config import Config, DataConfig, ModelConfig, TrainConfig
from .ctc import Decoder, GreedyDecoder, make_decoder
from .ctc import greedy as ctc_greedy
from .ctc import required_length as ctc_required_length
from .inference import infer
from .model import CRNN
from .recognizer import CharInfo, Reading, Recognizer

__all__ = ["CRNN", "CharInfo", "Charset", "Config", "DataConfig", "Decoder", "GreedyDecoder", "ModelConfig",
           "Reading", "Recognizer", "TrainConfig", "ctc_greedy", "ctc_required_length", "evaluate", "infer",
           "lexicon", "make_decoder", "train"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "train":
        from .train import train

        return train
    if name == "evaluate":
        from .evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'crnn_ocr' has no attribute {name!r}")
