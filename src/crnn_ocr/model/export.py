"""Export a checkpoint to a self-contained ONNX file for ONNX Runtime (or any ONNX runtime), and
turn such a file back into the checkpoint's weights (``load_onnx_weights``).

The ONNX model takes ``images``: float (N, C, H, W) in [0, 1], and returns ``log_probs``:
(T, N, classes), exactly like ``CRNN.forward``. The batch size and the width are dynamic
(the GRU's input size depends only on the height), and T follows the width (width / 4, or / 8 with ``width_pool = 8``).
The file carries what a reader needs besides the weights, as ``metadata_props``:

- ``charset``: the characters, class ``i + 1`` being character ``i`` (0 is the CTC blank);
- ``height``, ``width``, ``channels``: the preprocessing of ``crnn_ocr.images.resize_and_pad``
  (``width`` 0: any width, up to the config's ``max_width``);
- ``config``: the whole training ``Config`` as JSON; its ``[data] auto_levels`` and
  ``crop_to_ink`` say whether ``crnn_ocr.images.ink_view`` comes before the resize;
- ``vocabulary``: the training labels as a JSON list, when given (bundled models: the word
  decoders add them to their word lists).

It is not the place for running the file: ``Recognizer.load("model.onnx")`` does that.

Every weight keeps its state-dict name as an ONNX initializer (the exporter is told to keep
BatchNorm and not to fold constants; ONNX Runtime folds and fuses them when it loads the
file, so the speed is the same), so a file converts back to the model exactly
(``checkpoint.load``): the bundled models are ONNX files only, and training still starts
from them. ``float16=True`` (the bundled models) stores the weights as float16, each followed
by a ``Cast`` to float32 that ONNX Runtime folds at load: half the size, computed in float32.

Why the TorchScript exporter (``dynamo=False``): with torch 2.14 the torch.export-based
exporter fails to decompose ``nn.GRU`` for this model, and it has had GRU bugs that give
wrong numbers without an error (pytorch/pytorch#189225: ``linear_before_reset``; #191855: a
frozen time axis). The TorchScript exporter writes one native ONNX ``GRU`` node per layer.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from crnn_ocr.model.checkpoint import load_model
from crnn_ocr.model.errors import CheckpointError

OPSET = 20  # recent, and more than enough for Conv, MaxPool, GRU and LogSoftmax (ONNX Runtime >= 1.17)
INPUT, OUTPUT = "images", "log_probs"


def onnx_bytes(model: torch.nn.Module, charset, config, opset: int = OPSET, float16: bool = False,
               vocabulary: list[str] | None = None) -> bytes:
    """A CRNN (eval mode, on the CPU) as a serialized ONNX model with its metadata: what
    ``export_onnx`` writes, and what ``Recognizer.load(..., backend="onnx")`` runs directly.
    ``float16``: the weights stored in half precision (``half_weights``); ``vocabulary``: the
    training labels, kept in the metadata."""
    d = config.data
    example = torch.rand(2, d.channels, d.height, min(d.widest, 512))  # any width will do: it is dynamic
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter and its internals announce their deprecation; the tracer warns about
        # nn.GRU's input size checks, which are constant for a given model; and the exporter
        # warns that a GRU exported at one batch size may fail at another: not here, as the
        # model passes no initial state and the graph builds the zero state from the input's
        # shape (the tests check batch sizes 1 and 3).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*with a variable length with GRU", category=UserWarning)
        torch.onnx.export(model.eval(), (example,), buffer, dynamo=False, opset_version=opset,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch", 3: "width"}, OUTPUT: {0: "columns", 1: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    aliases = shared_weights(proto.graph, model.state_dict())
    if float16:
        half_weights(proto.graph)
    onnx.helper.set_model_props(proto, {
        "charset": charset.chars, "height": str(d.height), "width": str(d.width), "channels": str(d.channels),
        "config": json.dumps(config.to_dict(), ensure_ascii=False),
        **({"vocabulary": json.dumps(vocabulary, ensure_ascii=False)} if vocabulary else {}),
        **({"aliases": json.dumps(aliases)} if aliases else {}),
    })
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def shared_weights(graph: onnx.GraphProto, state: dict) -> dict[str, str]:
    """The weights of ``state`` that the exporter merged into another initializer of equal
    value (it keeps one of each; an untrained BatchNorm's zero bias and zero mean, say): their
    name -> the name kept, so that ``checkpoint.load`` gives every weight back."""
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    aliases = {}
    for key, value in state.items():
        if key in arrays or key.endswith("num_batches_tracked"):
            continue
        value = value.detach().cpu().numpy()
        same = [name for name, a in arrays.items() if a.shape == value.shape and (a == value).all()]
        if same:
            aliases[key] = same[0]
    return aliases


def half_weights(graph: onnx.GraphProto) -> None:
    """Store every float32 initializer of ``graph`` as float16 under its own name, followed by
    a ``Cast`` back to float32 that its users read instead (the graph computes in float32)."""
    casts, renamed = [], {}
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype("float16"), init.name)
        init.CopyFrom(half)
        renamed[init.name] = f"{init.name}/float32"
        casts.append(onnx.helper.make_node("Cast", [init.name], [renamed[init.name]], to=onnx.TensorProto.FLOAT))
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
    nodes = casts + list(graph.node)  # the casts first: the graph's nodes stay in topological order
    del graph.node[:]
    graph.node.extend(nodes)


def export_onnx(checkpoint: str | Path, onnx_path: str | Path, opset: int = OPSET) -> Path:
    """Write the model of ``checkpoint`` (a ``.pt`` file) to ``onnx_path`` with its metadata.

    >>> export_onnx("runs/captcha/best.pt", "captcha.onnx")  # doctest: +SKIP
    PosixPath('captcha.onnx')
    """
    model, charset, config = load_model(checkpoint)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(onnx_bytes(model, charset, config, opset))
    return onnx_path


def load_onnx_weights(path: str | Path) -> dict:
    """An ONNX file of ``crnn-ocr export`` or ``release`` (every bundled model) as a checkpoint
    dict: its initializers are the model's weights under their state-dict names (float16
    ones made float32), ``config``, ``charset`` and ``vocabulary`` from its metadata. Needs the
    ``onnx`` package (the training extra); ``checkpoint.load`` reads ``.onnx`` files with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        proto = onnx.load(str(path))
        meta = {p.key: p.value for p in proto.metadata_props}
        ckpt = {"config": json.loads(meta["config"]), "charset": meta["charset"],
                "vocabulary": json.loads(meta.get("vocabulary", "[]"))}
    except (KeyError, ValueError):
        raise CheckpointError(f"{path} has no crnn-ocr config and charset in its metadata") from None
    except Exception as e:  # onnx's protobuf errors for a file that is not ONNX
        reason = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is not an ONNX file ({reason})") from None
    state = {}
    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        state[init.name] = torch.from_numpy(array.astype("float32") if array.dtype.kind == "f" else array.copy())
    for key, kept in json.loads(meta.get("aliases", "{}")).items():  # weights the exporter merged (equal values)
        if kept in state:
            state[key] = state[kept].clone()
    for key in [k for k in state if k.endswith(".running_mean")]:  # BatchNorm's counter is not exported
        state.setdefault(key.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0))
    ckpt["model"] = state
    return ckpt
