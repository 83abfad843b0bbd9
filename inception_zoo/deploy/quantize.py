"""int8 post-training static quantization (:func:`quantize`) by a maintained path: ONNX Runtime's QDQ static
quantization of the deploy graph (:class:`QuantizedOnnxModel`), or torchao's PT2E flow with its
``X86InductorQuantizer`` compiled by Inductor (:class:`TorchAOModel`); not the deprecated eager
``torch.ao.quantization``. Saving, loading and reading calibration images: :mod:`.int8_files`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import tempfile
import types
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models import FeatureExtractor, InceptionNet
from .model import DeployedInceptionNet
from .runtimes import OnnxRuntimeModel, RuntimeModel, _require, check_threads, to_onnx

__all__ = ["QUANT_BACKENDS", "QuantizedOnnxModel", "TorchAOModel", "quantize"]

QUANT_BACKENDS = ("onnxruntime", "torchao")
# calibration methods, default first: ONNX Runtime's CalibrationMethod members (not Distribution, meant for
# float8: 10% top-1 left on the digits model); torchao's MinMaxObserver or (its x86 default) HistogramObserver
_ORT_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_TORCHAO_METHODS = ("minmax", "histogram")
_METADATA_KEY = "inception_zoo"  # the metadata_props entry of the int8 ONNX graph that holds its description


@functools.cache
def _has_vnni() -> bool:
    """True if ``/proc/cpuinfo`` lists an 8-bit dot-product instruction (AVX512-VNNI, AVX-VNNI, AMX-INT8);
    False without that file (ranges are then reduced: the safe choice)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[-1].split()}
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


class QuantizedOnnxModel(OnnxRuntimeModel):
    """An :class:`~inception_zoo.deploy.runtimes.OnnxRuntimeModel` whose graph ``self.onnx`` is int8 (QDQ),
    the model's description in its ``metadata_props``: (B, in_chans, H, W) float32, any batch and size the
    model takes -> (B, num_classes) float32 logits, the eager model's input errors. ``quantization``: how
    it was made (backend, reduce_range, calibration method and images)."""

    def __init__(self, onnx_model: bytes, *, quantization: dict, **meta) -> None:
        super().__init__(onnx_model, **meta)
        self.quantization = dict(quantization)


class TorchAOModel(RuntimeModel):
    """torchao's int8 ``program`` (an ``ExportedProgram``, dynamic batch, H×W fixed at ``input_hw``) compiled
    by ``torch.compile(dynamic=True)`` with Inductor's freezing at construction (tens of seconds; again, about
    10 s, at the first batch of 1): (B, in_chans, *input_hw) float32 -> (B, num_classes) float32 logits, the
    eager model's input errors (another H×W: ``ValueError``). Torch's threads; pickling recompiles. Limits
    as :class:`~inception_zoo.deploy.runtimes.RuntimeModel`; concurrent calls from threads are untested."""

    backend = "torchao"

    def __init__(self, program, *, input_hw: tuple[int, int], quantization: dict, **meta) -> None:
        self.program, self.input_hw = program, tuple(input_hw)  # for _build, which the next line calls
        super().__init__(None, **meta)
        self.quantization = dict(quantization)

    def _build(self):
        _torchao()  # registers the quantized operators and Inductor's int8 passes
        compiled = torch.compile(self.program.module(), dynamic=True)
        with torch.no_grad(), _quiet_inductor():
            compiled(torch.zeros(2, self.in_chans, *self.input_hw))  # compile now, not at the first call
        return compiled.__call__  # not the module: as a submodule, the program's would refuse train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)  # the eager model's errors first
        if tuple(x.shape[2:]) != self.input_hw:
            raise ValueError(f"{self.name} (int8, torchao) was compiled for {self.input_hw[0]}x{self.input_hw[1]} "
                             f"inputs, got {x.shape[2]}x{x.shape[3]}; quantize it with calibration images of "
                             "that size, or use backend='onnxruntime' (any size)")
        return super().forward(x)

    def _run(self, images: np.ndarray) -> np.ndarray:
        with torch.no_grad(), _quiet_inductor():
            return self._runtime(torch.from_numpy(images)).numpy()

    def __getstate__(self) -> dict:
        state, buffer = super().__getstate__(), io.BytesIO()
        torch.export.save(state["program"], buffer)
        return dict(state, program=buffer.getvalue())

    def __setstate__(self, state: dict) -> None:
        _torchao()
        super().__setstate__(dict(state, program=torch.export.load(io.BytesIO(state["program"]))))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, backend='torchao', int8, input {self.input_hw[0]}x{self.input_hw[1]}"


@contextlib.contextmanager
def _quiet(name: str):
    """Logger ``name`` raised to ERROR inside (its notices are about torch's and torchao's own code)."""
    logger, level = logging.getLogger(name), logging.getLogger(name).level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _torchao():
    """``(prepare_pt2e, convert_pt2e, x86_inductor_quantizer module)``; importing the quantizer registers
    its Inductor passes. Raises ImportError (saying what to install) without torchao."""
    try:
        with _quiet("torch.utils._pytree"):  # torchao's import-time deprecation notice
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    except ImportError as e:
        raise ImportError(f"backend='torchao' needs the torchao package: pip install torchao ({e})") from None
    return prepare_pt2e, convert_pt2e, xiq


@contextlib.contextmanager
def _quiet_inductor():
    """Inductor's ``freezing`` on for the compilations started inside (torchao's x86 int8 lowering needs
    it: weights become constants that oneDNN prepacks), its notices about its own code hidden."""
    import torch._inductor.config

    with torch._inductor.config.patch(freezing=True), warnings.catch_warnings(), _quiet("torch.utils.cpp_extension"):
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
        yield


def _check_model(model: nn.Module) -> None:
    """Raise unless ``model`` is an inception_zoo classifier in eval mode with float32 weights on the CPU."""
    if isinstance(model, FeatureExtractor):
        raise TypeError("quantize expects an inception_zoo classifier; features_only extractors are not supported")
    if not isinstance(model, InceptionNet):
        raise TypeError(f"quantize expects an inception_zoo model, got {type(model).__name__}")
    if model.training:
        raise ValueError(f"quantize: {model.name} is in train mode; call model.eval() first (calibration runs "
                         "the eval-mode network: BatchNorm with its running statistics, no dropout)")
    probe = model._dtype_probe
    if probe.dtype != torch.float32 or probe.device.type != "cpu":
        raise ValueError(f"quantize: {model.name} has {probe.dtype} weights on {probe.device}; quantize "
                         "starts from float32 on the CPU (model.float().cpu())")
    broken = next((k for k, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()),
                  None)
    if broken is not None:
        raise ValueError(f"quantize: {model.name}'s {broken} holds NaN or infinite values; int8 ranges cannot "
                         "be calibrated on them (check the checkpoint)")


def _calibration_batches(model: InceptionNet, data, batch_size: int) -> list[torch.Tensor]:
    """``data`` as a list of (B, C, H, W) CPU batches, each passed by the model's input check; a tensor is
    split into batches of ``batch_size``, an iterable's items may be ``(images, labels)``."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"quantize: batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(data, torch.Tensor):
        model._check_input(data)
        data = data.split(batch_size)
    elif not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError("quantize: calibration_data must be a (N, C, H, W) tensor or an iterable of such "
                        f"batches (or of (images, labels) pairs), got {type(data).__name__}")
    batches = []
    for i, item in enumerate(data):
        item = item[0] if isinstance(item, (tuple, list)) and item else item
        try:
            model._check_input(item)
        except ValueError as e:
            raise ValueError(f"calibration batch {i}: {e}") from None
        if not item.isfinite().all():
            raise ValueError(f"calibration batch {i} holds NaN or infinite values; calibrate on images "
                             "preprocessed as the model expects")
        if len(item):
            batches.append(item.detach().cpu().contiguous())
    if not batches:
        raise ValueError(f"quantize: the calibration data of {model.name} holds no images; give it a hundred "
                         "or a few hundred representative images, preprocessed as the model expects")
    return batches


def _one_size(batches: list[torch.Tensor], needed_by: str) -> None:
    sizes = {tuple(b.shape[2:]) for b in batches}
    if len(sizes) > 1:
        raise ValueError(f"quantize: {needed_by} needs calibration images of one size; got "
                         f"{', '.join(f'{h}x{w}' for h, w in sorted(sizes))}")


def _description(model: nn.Module) -> dict:
    """What a quantized model keeps of ``model``: its name, input checks and configuration."""
    return {"name": model.name, "in_chans": model.in_chans, "min_size": tuple(model._min_size),
            "num_classes": model.num_classes, "default_cfg": dict(model.default_cfg)}


def quantize(model: nn.Module, calibration_data, backend: str = "onnxruntime", *, threads: int | None = None,
             batch_size: int = 8, reduce_range: bool | None = None,
             calibration_method: str | None = None) -> RuntimeModel:
    """An int8 copy of ``model`` by post-training static quantization (the model is not changed): weights
    int8 per output channel (symmetric), activations uint8 per tensor, ranges calibrated on images.

    Args:
        model: an inception_zoo classifier in eval mode, float32, on the CPU.
        calibration_data: images preprocessed as the model expects (``default_cfg`` mean / std), read once
            into memory, each batch checked by the model's input check: a (N, in_chans, H, W) float32
            tensor (run in batches of ``batch_size``), or an iterable of such batches or of ``(images,
            labels)`` (a ``DataLoader``). A hundred or a few hundred images like those to come.
        backend: ``"onnxruntime"``: the deploy graph (:func:`~inception_zoo.deploy.runtimes.to_onnx`)
            through ``quant_pre_process`` and ``quantize_static`` (QDQ). ``"torchao"``: ``torch.export``,
            ``prepare_pt2e`` / ``convert_pt2e`` with the ``X86InductorQuantizer``, ``torch.compile``.
        threads: ONNX Runtime's intra-op threads (default ``torch.get_num_threads()``); None for torchao.
        reduce_range: None: True on CPUs without VNNI / AMX (``/proc/cpuinfo``), as ONNX Runtime's and
            torchao's documentation advise (there uint8 x int8 products are summed in pairs into int16,
            ``vpmaddubsw``, which can saturate): 7-bit weights (ONNX Runtime) or activations (torchao).
        calibration_method: ``"minmax"`` (default: the extreme values seen); ONNX Runtime also
            ``"entropy"`` and ``"percentile"`` (99.999th; they hold every image's activations in memory,
            gigabytes for Inception v3 at 100 images), torchao ``"histogram"`` (its x86 default, which
            failed outright on an Inception v3 whose activations reach 1e13). On the digits model below:
            entropy 98.61% (one image more), percentile and histogram 98.33%, as min / max.

    Returns:
        A :class:`QuantizedOnnxModel` or :class:`TorchAOModel` (see :func:`save_quantized`): (B, in_chans,
        H, W) float32 CPU tensor -> (B, num_classes) float32 logits, input checked as the model checks it
        (the same ``ValueError``); a snapshot without autograd or ``train()``, logits only; the torchao one
        takes the calibration images' H×W only.

    Measured (2-core AMD EPYC Zen3 without VNNI, 2 threads; tests/test_quantize.py): ``inception_v1_cifar``
    trained by the default ``inception-zoo train`` (digits, 98.33% validation top-1), calibrated on 100
    training images, keeps 98.33% with either backend (every top-1 class kept with ONNX Runtime, 359 of 360
    with torchao); without reduce_range, ONNX Runtime's saturates (97.78%, logit error 0.36 of the largest
    against 0.10). An Inception v3 from a converted random-weight timm checkpoint keeps the top-1 class and
    top-5 set of 48 of 48 photographs. Inception v3, batch 8, median of 7: float32 torch (deploy mode) 1042
    ms, ONNX Runtime 926 ms (the fastest float32), OpenVINO 972 ms; int8 ONNX Runtime 442 ms (2.1x), int8
    torchao 650 ms (1.4x); batch 1: 99 ms float32 ONNX Runtime, 54 and 121 ms int8. Building: 15 s (ONNX
    Runtime, 32 images), 72 s (torchao, mostly Inductor; 25-60 s for ``inception_v1_cifar``).

    Sources: ONNX Runtime, "Quantize ONNX models" (QDQ, U8S8 and reduce_range on x86 without VNNI),
    https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html, and
    ``onnxruntime.quantization.quantize_static``'s docstring; torchao, "PT2E Quantization",
    https://docs.pytorch.org/ao/stable/pt2e_quantization/index.html, and "PyTorch 2 Export Quantization
    with X86 Backend through Inductor", https://pytorch.org/tutorials/prototype/pt2e_quant_x86_inductor.html.

    Raises:
        TypeError: ``model`` is not an inception_zoo classifier; ``calibration_data`` is not a tensor or
            an iterable.
        ValueError: ``model`` in train mode (call ``.eval()``), not float32 on the CPU, or with NaN or
            infinite weights; no calibration images; a batch the model refuses (its message, prefixed with
            the batch index) or holding NaN or infinite values; activations overflowing float32; several
            image sizes (torchao, histograms); ``threads`` with torchao, or not a positive integer; an
            unknown backend or method.
        ImportError: the backend's package (``onnxruntime`` and ``onnx``, or ``torchao``) is missing.
    """
    _check_model(model)
    if backend not in QUANT_BACKENDS:
        raise ValueError(f"quantize: unknown backend {backend!r}; expected one of {', '.join(QUANT_BACKENDS)}")
    methods = tuple(_ORT_METHODS if backend == "onnxruntime" else _TORCHAO_METHODS)
    method = calibration_method or methods[0]
    if method not in methods:
        raise ValueError(f"quantize: calibration_method {method!r} is not available with backend={backend!r}; "
                         f"expected one of {', '.join(methods)}")
    if backend == "torchao" and threads is not None:
        raise ValueError("quantize: the torchao module runs on torch's threads; use torch.set_num_threads "
                         "instead of threads=")
    threads = None if threads is None else check_threads(threads)  # before the calibration, not after
    batches = _calibration_batches(model, calibration_data, batch_size)
    quantization = {"backend": backend, "reduce_range": not _has_vnni() if reduce_range is None else bool(reduce_range),
                    "calibration_method": method, "calibration_images": sum(len(b) for b in batches)}
    if backend == "onnxruntime":
        return _quantize_onnxruntime(model, batches, quantization, threads)
    return _quantize_torchao(model, batches, quantization)


def _quantize_onnxruntime(model: InceptionNet, batches: list[torch.Tensor], quantization: dict,
                          threads: int | None) -> QuantizedOnnxModel:
    """The deploy graph -> ``quant_pre_process`` -> ``quantize_static`` (QDQ, per-channel int8 weights, uint8
    activations), the description in its metadata; ONNX Runtime's files live in a temporary folder."""
    _require("onnxruntime")
    import onnx
    from onnxruntime import quantization as ortq

    meta, method = _description(model), quantization["calibration_method"]
    graph = to_onnx(DeployedInceptionNet(model), tuple(batches[0].shape[1:]))
    if method != "minmax":  # ONNX Runtime's histograms stack the batches' activations: one shape for all
        _one_size(batches, f"calibration_method={method!r}")
        batches = [image[None] for batch in batches for image in batch]
    feeds = iter([{"images": batch.numpy()} for batch in batches])
    reader = types.SimpleNamespace(get_next=lambda: next(feeds, None))  # all the calibrators call
    with tempfile.TemporaryDirectory(prefix="inception_zoo_quantize_") as tmp:
        fp32, prepared, int8 = (os.path.join(tmp, f) for f in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        Path(fp32).write_bytes(graph)
        ortq.quant_pre_process(fp32, prepared)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
                ortq.quantize_static(prepared, int8, reader, quant_format=ortq.QuantFormat.QDQ,
                                     per_channel=True, reduce_range=quantization["reduce_range"],
                                     activation_type=ortq.QuantType.QUInt8, weight_type=ortq.QuantType.QInt8,
                                     calibrate_method=getattr(ortq.CalibrationMethod, _ORT_METHODS[method]))
        except AssertionError as e:  # ONNX Runtime asserts on the ranges it computed (e.g. "scale issue")
            raise ValueError(f"quantize: {model.name}'s activations on the calibration images overflow float32 "
                             f"(ONNX Runtime: {e or 'assertion failed'}); no int8 ranges can hold them") from None
        proto = onnx.load(int8)
    entry = proto.metadata_props.add()
    entry.key, entry.value = _METADATA_KEY, json.dumps(dict(meta, quantization=quantization), default=list)
    return QuantizedOnnxModel(proto.SerializeToString(), threads=threads, quantization=quantization, **meta)


def _quantize_torchao(model: InceptionNet, batches: list[torch.Tensor], quantization: dict) -> TorchAOModel:
    """``torch.export`` (dynamic batch) -> ``prepare_pt2e`` with the X86InductorQuantizer -> calibration ->
    ``convert_pt2e`` -> exported again (so the module compiles the graph a saved and loaded one will)."""
    prepare_pt2e, convert_pt2e, xiq = _torchao()
    _one_size(batches, "backend='torchao' (it compiles for one input size)")
    example = (torch.zeros(2, *batches[0].shape[1:]),)  # a batch of 2: export specializes a batch of 1
    dynamic = ({0: torch.export.Dim("batch", min=1)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # export's notes about the Python-side input checks
        graph = torch.export.export(model, example, dynamic_shapes=dynamic).module()
        config = xiq.get_default_x86_inductor_quantization_config(reduce_range=quantization["reduce_range"])
        if quantization["calibration_method"] == "minmax":
            from torchao.quantization.pt2e import MinMaxObserver

            observer = MinMaxObserver.with_args(eps=2**-12)  # the default config's eps
            activations = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=observer)
            config = dataclasses.replace(config, input_activation=activations, output_activation=activations)
        quantizer = xiq.X86InductorQuantizer().set_global(config)
        if model.in_chans == 1:
            # one channel is both NCHW and NHWC: Inductor's int8 convolution assumes one layout, oneDNN writes
            # the other (a stride assertion at the first call); the first convolution stays float32 (cheap)
            quantizer.set_module_name_qconfig(model.default_cfg["first_conv"], None)
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for batch in batches:
                prepared(batch)
        program = torch.export.export(convert_pt2e(prepared), example, dynamic_shapes=dynamic)
    return TorchAOModel(program, input_hw=tuple(batches[0].shape[2:]), quantization=quantization,
                        **_description(model))
