"""crnn-ocr: a small, fast CRNN text recognizer (CNN -> BiGRU -> CTC) in PyTorch."""
from .charset import Charset, ctc_greedy, ctc_required_length
from .config import Config, DataConfig, ModelConfig, TrainConfig
from .evaluate import evaluate
from .model import CRNN
from .recognizer import Recognizer
from .train import train

__all__ = ["CRNN", "Charset", "Config", "DataConfig", "ModelConfig", "Recognizer", "TrainConfig",
           "ctc_greedy", "ctc_required_length", "evaluate", "train"]
__version__ = "0.1.0"
