"""int8 models on disk and the images they are calibrated on: :func:`save_quantized` /
:func:`load_quantized` write and read what :func:`~inception_zoo.deploy.quantize.quantize` made (``.onnx`` /
``.pt2``, with the model's name, input checks and ``default_cfg``); :func:`calibration_images` reads a
folder of images (``inception-zoo quantize --calib DIR``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from .quantize import _METADATA_KEY, QuantizedOnnxModel, TorchAOModel, _description, _quiet, _torchao
from .runtimes import RuntimeModel, _require, check_threads

__all__ = ["SUFFIX", "calibration_images", "load_quantized", "save_quantized"]

SUFFIX = {"onnxruntime": ".onnx", "torchao": ".pt2"}  # quantize backend -> the file it is saved as
_PT2_EXTRA = "inception_zoo.json"  # the .pt2 archive's extra file that holds the description


def save_quantized(qmodel: RuntimeModel, path: str | os.PathLike) -> Path:
    """Write a model from :func:`quantize` to ``path`` (returned) for :func:`load_quantized`: a
    :class:`QuantizedOnnxModel` as its int8 ONNX graph (``.onnx``; any ONNX Runtime runs it; the model's
    description as JSON in ``metadata_props["inception_zoo"]``), a :class:`TorchAOModel` as a
    ``torch.export`` archive (``.pt2``; the description in its extra file ``inception_zoo.json``). Raises
    TypeError for another model, ValueError for a path without the backend's suffix, OSError."""
    if not isinstance(qmodel, (QuantizedOnnxModel, TorchAOModel)):
        raise TypeError(f"save_quantized expects a model from quantize(), got {type(qmodel).__name__}")
    path, suffix = Path(path), SUFFIX[qmodel.backend]
    if path.suffix != suffix:
        raise ValueError(f"save_quantized: {qmodel.backend} int8 models are written as {suffix} files; "
                         f"give a path ending in {suffix}, got {str(path)!r}")
    if isinstance(qmodel, QuantizedOnnxModel):
        path.write_bytes(qmodel.onnx)
    else:
        meta = dict(_description(qmodel), input_hw=qmodel.input_hw, quantization=qmodel.quantization)
        torch.export.save(qmodel.program, path, extra_files={_PT2_EXTRA: json.dumps(meta, default=list)})
    return path


def load_quantized(path: str | os.PathLike, *, threads: int | None = None) -> RuntimeModel:
    """The int8 model :func:`save_quantized` wrote at ``path``: a :class:`QuantizedOnnxModel` from
    ``.onnx`` (``threads`` as in :func:`quantize`), a :class:`TorchAOModel` from ``.pt2`` (compiled again:
    tens of seconds; torch's threads); its logits equal the saved model's (``torch.equal``, at the same
    thread count). ``.onnx`` files are protobuf (nothing in them runs); ``.pt2`` archives are read by
    ``torch.export.load``, which unpickles: load only ``.pt2`` files you trust. Raises FileNotFoundError,
    ValueError (another suffix; a corrupt file or one :func:`save_quantized` did not write; ``threads``
    not a positive integer, or given for a ``.pt2``), ImportError (no backend). Corruption is found where
    it breaks the file's structure or graph; ONNX files carry no checksum, so damaged weight bytes load."""
    path = Path(path)
    if path.suffix not in SUFFIX.values():
        raise ValueError(f"load_quantized reads .onnx (onnxruntime) and .pt2 (torchao) files, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no quantized model at {str(path)!r}")
    if path.suffix == ".pt2" and threads is not None:
        raise ValueError("load_quantized: a .pt2 (torchao) model runs on torch's threads; use "
                         "torch.set_num_threads instead of threads=")
    threads = None if threads is None else check_threads(threads)
    not_ours = f"{str(path)!r} is corrupt or was not written by save_quantized"
    if path.suffix == ".onnx":
        _require("onnxruntime")
        import onnx

        data = path.read_bytes()
        try:
            proto = onnx.load_model_from_string(data)
        except Exception as e:  # protobuf's DecodeError and kin
            raise ValueError(f"{not_ours} (not an ONNX model: {type(e).__name__})") from None
        text = {p.key: p.value for p in proto.metadata_props}.get(_METADATA_KEY)
    else:
        _torchao()
        extra = {_PT2_EXTRA: ""}
        try:
            with _quiet("torch._export"), _quiet("torch.export"):
                program, text = torch.export.load(path, extra_files=extra), extra[_PT2_EXTRA]
        except Exception as e:  # zipfile.BadZipFile, RuntimeError, pickle errors, ...
            raise ValueError(f"{not_ours} (not a torch.export archive: {type(e).__name__}: {e})") from None
    if not text:
        raise ValueError(f"{str(path)!r} holds no inception_zoo description; it was not written by save_quantized")
    try:
        meta = json.loads(text)  # JSON lists back to tuples
        meta["default_cfg"] = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["default_cfg"].items()}
        meta["min_size"] = tuple(meta["min_size"])
        missing = {"name", "in_chans", "num_classes", "quantization"} - set(meta)
        if missing or (path.suffix == ".pt2" and "input_hw" not in meta):
            raise KeyError(", ".join(sorted(missing)) or "input_hw")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{not_ours} (its description is damaged: {type(e).__name__}: {e})") from None
    try:
        if path.suffix == ".onnx":
            return QuantizedOnnxModel(data, threads=threads, **meta)
        return TorchAOModel(program, input_hw=tuple(meta.pop("input_hw")), **meta)
    except (ValueError, ImportError):
        raise
    except Exception as e:  # the runtime refusing the graph: ONNX Runtime's InvalidGraph and kin
        why = (str(e).strip().splitlines() or [""])[0][:300]
        raise ValueError(f"{not_ours} (the runtime refused its graph: {type(e).__name__}: {why})") from None


def calibration_images(folder: str | os.PathLike, model: nn.Module, *, limit: int = 100) -> torch.Tensor:
    """Up to ``limit`` images found under ``folder`` (class folders too; :data:`~inception_zoo.images.IMAGE_SUFFIXES`;
    more are sampled evenly from the sorted list), read as RGB (grey for ``in_chans=1``) and put through the
    model's evaluation transform (timm's ``create_transform(**resolve_data_config({}, model=model))``):
    a float32 tensor (N, in_chans, H, W), H×W the ``default_cfg`` input size. Raises ValueError: no such
    folder, no image in it, an unreadable image (named), ``limit`` < 1, ``in_chans`` neither 1 nor 3."""
    import timm.data

    from ..images import image_files, read_image

    mode = {1: "L", 3: "RGB"}.get(model.in_chans)
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"the number of calibration images must be a positive integer, got {limit!r}")
    files = image_files(folder, what="calibration folder")
    if mode is None:
        raise ValueError(f"{model.name} takes {model.in_chans} channels; images are read as RGB (3) or grey (1)")
    if len(files) > limit:
        files = [files[i * len(files) // limit] for i in range(limit)]
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    images = [transform(read_image(file, mode)) for file in files]
    return torch.stack(images)
