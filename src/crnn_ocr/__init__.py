"""crnn-ocr: a small, fast CRNN text recognizer (CNN -> BiGRU -> CTC): trained with PyTorch,
read with ONNX Runtime.

Every name below is imported on first use (PEP 562), so that ``import crnn_ocr`` is instant
and a ``Recognizer`` loads neither PyTorch nor the training-data modules.
"""
from importlib import import_module

# name -> (module, attribute in it; None: the module itself)
_EXPORTS = {"CRNN": (".model.crnn", "CRNN"), "CharInfo": (".reading.recognizer", "CharInfo"), "Charset": (".model.charset", "Charset"),
            "Config": (".config.schema", "Config"), "DataConfig": (".config.schema", "DataConfig"),
            "Decoder": (".decoding.ctc", "Decoder"), "GreedyDecoder": (".decoding.ctc", "GreedyDecoder"),
            "ModelConfig": (".config.schema", "ModelConfig"), "Reading": (".reading.recognizer", "Reading"),
            "Recognizer": (".reading.recognizer", "Recognizer"), "TrainConfig": (".config.schema", "TrainConfig"),
            "ctc_greedy": (".decoding.ctc", "greedy"), "ctc_required_length": (".decoding.ctc", "required_length"),
            "evaluate": (".evaluation.evaluate", "evaluate"), "infer": (".reading.infer", "infer"), "lexicon": (".decoding.lexicon", None),
            "make_decoder": (".decoding.ctc", "make_decoder"), "train": (".training.train", "train")}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crnn_ocr' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = import_module(module, __name__)
    return value if attribute is None else getattr(value, attribute)
