"""Deploy backends beyond torch: a model's deploy graph exported to ONNX and run by ONNX Runtime or OpenVINO,
behind a module that takes and returns torch tensors.

* :func:`to_onnx`: the ONNX bytes of a model (dynamic batch, height and width);
* :class:`RuntimeModel`: the shared front (input checks, tensor conversion, pickling);
  :class:`OnnxRuntimeModel` and :class:`OpenVINOModel` the two runtimes behind it;
* :func:`runtime_model`: one of them for an inception_zoo model or any image classifier (the benchmark's
  peers), by backend name.

Both runtimes are optional (``pip install "inception_zoo[deploy]"``); :func:`available_backends` says which
are installed.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..models.checks import InputChecks

__all__ = ["BACKENDS", "RUNTIMES", "available_backends", "check_options", "check_threads", "to_onnx", "RuntimeModel",
           "OnnxRuntimeModel", "OpenVINOModel", "runtime_model"]

BACKENDS = ("torch", "onnxruntime", "openvino")  # optimize_for_inference's; "torch": DeployedInceptionNet
RUNTIMES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}  # backend -> the module it imports
ONNX_OPSET = 17


def available_backends() -> list[str]:
    """The backends of :data:`BACKENDS` usable here: "torch" always, the runtimes whose package (and, for
    the export, ``onnx``) is installed."""
    have_onnx = importlib.util.find_spec("onnx") is not None
    return ["torch"] + [b for b, mod in RUNTIMES.items() if have_onnx and importlib.util.find_spec(mod)]


def check_threads(threads) -> int:
    """``threads`` (a positive int, or None: ``torch.get_num_threads()``) as an int. Raises ValueError
    naming what was expected otherwise (a bool, a float, a string, zero or less)."""
    if threads is None:
        return torch.get_num_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer (or None: torch's), got {threads!r}")
    return threads


# settings that options must not change: what threads= sets, and the float32 arithmetic the outputs promise
_OWN_SETTINGS = {"onnxruntime": {"session.intra_op_num_threads": "threads="},
                 "openvino": {"INFERENCE_NUM_THREADS": "threads=", "INFERENCE_PRECISION_HINT": "float32 (fixed)"}}


def check_options(options, backend: str | None = None) -> dict:
    """``options`` (a dict of a runtime's setting names to values, or None) as a new dict; for
    ``backend`` also checked against what that runtime takes: ONNX Runtime's session config entries are
    strings ("1" / "0" for switches), and neither runtime's threads or precision may be set through them.
    Raises ValueError otherwise."""
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"options must be a dict of the runtime's setting names to values, got {options!r}")
    for key in set(options) & set(_OWN_SETTINGS.get(backend, {})):
        raise ValueError(f"options: {key!r} is set by inception_zoo ({_OWN_SETTINGS[backend][key]}); leave it out")
    if backend == "onnxruntime":
        bad = {k: v for k, v in options.items() if not isinstance(v, str)}
        if bad:
            raise ValueError(f"options: ONNX Runtime's session config values are strings (\"1\" / \"0\" for "
                             f"switches), got {bad!r}")
    return dict(options)


def _require(backend: str):
    """The runtime's module, imported. Raises ValueError for an unknown backend and ImportError (saying
    what to install) for a missing package."""
    if backend not in RUNTIMES:
        raise ValueError(f"unknown runtime backend {backend!r}; expected one of {', '.join(RUNTIMES)}")
    for package in ("onnx", RUNTIMES[backend]):
        if importlib.util.find_spec(package) is None:
            raise ImportError(f"backend={backend!r} needs the {package!r} package: "
                              f"pip install \"inception_zoo[deploy]\" (or pip install {package})")
    return importlib.import_module(RUNTIMES[backend])


def to_onnx(model: nn.Module, input_size: Sequence[int], *, opset: int = ONNX_OPSET) -> bytes:
    """``model`` (in eval mode) as ONNX bytes: one input ``images`` (B, C, H, W) float32 with batch, height
    and width dynamic, one output ``logits`` (B, num_classes). ``input_size``: (C, H, W) of the example the
    graph is traced with. An :class:`~inception_zoo.DeployedInceptionNet` exports its plain-PyTorch path
    (BatchNorm folded, 1×1 convolutions merged); the fused oneDNN calls are torch-only.

    Uses torch's TorchScript-based exporter (``dynamo=False``), which needs no extra package beyond ``onnx``.

    Raises:
        RuntimeError: from the exporter, for an operator ONNX has no equivalent of.
    """
    example = torch.zeros(1, *input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the Python-side input checks
        torch.onnx.export(
            model, (example,), buffer, input_names=["images"], output_names=["logits"], opset_version=opset,
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}, dynamo=False,
        )
    return buffer.getvalue()


class RuntimeModel(InputChecks):
    """A frozen image classifier run by an external runtime, called like the model it came from.

    Forward: (B, in_chans, H, W) floating-point CPU tensor, any batch and any size the model takes ->
    (B, num_classes) float32 logits, a new tensor. Input is checked as the model checks it (the same
    ``ValueError``); under autocast float16 and bfloat16 are taken too and computed in float32.

    Limits:
        * no autograd: an input that requires grad, with grad enabled, raises ``ValueError`` (use the
          model itself, or ``backend="torch"``);
        * a snapshot: the weights are those at conversion; later changes to the model are not seen, and
          ``state_dict()`` is empty;
        * CPU tensors only, float32 arithmetic, fixed channel count (``in_chans``); logits only (no
          ``forward_features``); ``train()`` raises ``RuntimeError``;
        * not traceable: ``torch.jit.trace`` / ``torch.export`` see no torch operations inside and would
          record the output as a constant (export the model itself instead).

    Threads: ``threads`` intra-op threads of the runtime (default: ``torch.get_num_threads()`` at
    conversion). One instance may be called from many threads at once. ``options``: the runtime's own
    settings on top of ours, by its names (ONNX Runtime session config entries, OpenVINO properties).
    ONNX Runtime's worker threads spin after each call by default: fastest for back-to-back calls, but
    torch code run right after in the process (preprocessing, another model) competes with them. Measured
    (inception_v1_bn, batch 1, 2 threads): ONNX Runtime alone 25.6 ms spinning, 33.1 ms with
    ``options={"session.intra_op.allow_spinning": "0"}``; a torch forward (47 ms alone) and an ONNX
    Runtime call in turn 148 ms spinning, 79 ms not. Pickling, ``copy.deepcopy`` and
    ``torch.save`` keep the ONNX graph and rebuild the runtime on load.

    Subclasses implement ``_build()`` (the runtime object from ``self.onnx``) and ``_run(array) -> array``.
    """

    backend = ""

    def __init__(self, onnx_model: bytes, *, name: str, in_chans: int, min_size: tuple[int, int],
                 num_classes: int, default_cfg: dict | None = None, threads: int | None = None,
                 options: dict | None = None) -> None:
        super().__init__()
        self.onnx = onnx_model
        self.name, self.in_chans, self._min_size, self.num_classes = name, in_chans, tuple(min_size), num_classes
        self.default_cfg = self.pretrained_cfg = dict(default_cfg or {})
        self.threads = check_threads(threads)
        self.options = check_options(options, self.backend)
        self.register_buffer("_dtype_probe", torch.zeros(0), persistent=False)
        try:
            self._runtime = self._build()
        except Exception as e:
            if not self.options:
                raise
            raise ValueError(f"{self.backend} refused options={self.options!r}: {type(e).__name__}: "
                             f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''}") from None
        super().train(False)

    def _build(self):
        raise NotImplementedError

    def _run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def train(self, mode: bool = True) -> "RuntimeModel":
        if mode:
            raise RuntimeError(f"{self.name} runs in {self.backend} for inference; it cannot be trained")
        return super().train(False)

    def _apply(self, fn, recurse=True):
        # .to(dtype / device / memory_format) would only move the empty probe buffer: the graph stays float32
        # on CPU, which forward converts to; refusing here is clearer than pretending.
        probe = fn(self._dtype_probe)
        if probe.device.type != "cpu":
            raise ValueError(f"{self.name} runs in {self.backend} on the CPU; it cannot be moved to "
                             f"{probe.device} (use backend='torch' for other devices)")
        if probe.dtype != torch.float32:
            raise ValueError(f"{self.name} runs in {self.backend} in float32; it cannot be converted to "
                             f"{probe.dtype} (inputs of other floating dtypes are taken and converted)")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if x.device.type != "cpu":
            raise ValueError(f"{self.name} runs in {self.backend} on CPU; got a tensor on {x.device}")
        if x.requires_grad and torch.is_grad_enabled():
            raise ValueError(f"{self.name} runs in {self.backend}, which has no autograd; got an input that "
                             "requires grad (use the model itself, or optimize_for_inference(..., backend='torch'))")
        images = x.detach().to(torch.float32).contiguous().numpy()
        if not len(images):  # OpenVINO refuses an empty batch: run one image, return none
            return self.forward(torch.zeros(1, *images.shape[1:]))[:0]
        return torch.from_numpy(np.ascontiguousarray(self._run(images)))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_runtime", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._runtime = self._build()

    def extra_repr(self) -> str:
        options = f", options={self.options!r}" if self.options else ""
        return f"name={self.name!r}, backend={self.backend!r}, threads={self.threads}{options}"


class OnnxRuntimeModel(RuntimeModel):
    """A :class:`RuntimeModel` in ONNX Runtime: ``CPUExecutionProvider``, every graph optimization
    (``ORT_ENABLE_ALL``), ``threads`` intra-op threads, sequential execution. ``InferenceSession.run`` is
    thread-safe, so concurrent calls share one session."""

    backend = "onnxruntime"

    def _build(self):
        ort = _require(self.backend)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        for key, value in self.options.items():
            options.add_session_config_entry(key, str(value))
        return ort.InferenceSession(self.onnx, options, providers=["CPUExecutionProvider"])

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self._runtime.run(None, {"images": images})[0]


class OpenVINOModel(RuntimeModel):
    """A :class:`RuntimeModel` in OpenVINO: the CPU device, ``threads`` inference threads, float32
    (``INFERENCE_PRECISION_HINT``: OpenVINO would otherwise compute in bfloat16 on CPUs that have it) and the
    latency hint. An infer request serves one call at a time, so each calling thread gets its own."""

    backend = "openvino"

    def _build(self):
        ov = _require(self.backend)
        graph = ov.convert_model(io.BytesIO(self.onnx))
        config = {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32",
                  "PERFORMANCE_HINT": "LATENCY", **self.options}
        self._requests = threading.local()
        return ov.Core().compile_model(graph, "CPU", config)

    def _run(self, images: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._runtime.create_infer_request()
        return request.infer({0: images})[0].copy()  # the request reuses its output memory

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_requests", None)
        return state


_CLASSES = {"onnxruntime": OnnxRuntimeModel, "openvino": OpenVINOModel}


def runtime_model(model: nn.Module, backend: str, *, threads: int | None = None,
                  input_size: Sequence[int] | None = None, options: dict | None = None) -> RuntimeModel:
    """``model`` in the runtime ``backend`` ("onnxruntime" or "openvino"), as a :class:`RuntimeModel`.

    ``model``: an inception_zoo classifier or its deploy form (the deploy form's graph is exported: BatchNorm
    folded, 1×1 convolutions merged), whose name, ``in_chans``, minimum size and ``default_cfg`` the result
    keeps; or any image classifier taking (B, C, H, W) (a peer library's, as the benchmark uses), which then
    needs ``input_size`` (C, H, W) and is checked for channels only. ``threads``: the runtime's threads
    (default ``torch.get_num_threads()``); ``options``: the runtime's own settings (see
    :class:`RuntimeModel`).

    Raises:
        ValueError: an unknown backend; a foreign model without ``input_size``; ``threads`` not a positive
            integer; a model whose weights are not float32 on the CPU (the runtimes compute in float32:
            ``model.float().cpu()`` first).
        ImportError: the runtime (or ``onnx``) is not installed; the message says what to install.
    """
    _require(backend)
    threads, options = check_threads(threads), check_options(options, backend)  # before the export (seconds)
    weights = {(t.dtype, t.device.type) for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()}
    if weights - {(torch.float32, "cpu")}:
        found = ", ".join(sorted(f"{d} on {dev}" for d, dev in weights))
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)} has {found} weights; backend="
                         f"{backend!r} runs float32 on the CPU: convert the model first (model.float().cpu())")
    cfg = getattr(model, "default_cfg", None) or {}
    if hasattr(model, "_min_size") and hasattr(model, "in_chans"):
        size = tuple(input_size or cfg["input_size"])
        meta = dict(name=model.name, in_chans=model.in_chans, min_size=model._min_size,
                    num_classes=model.num_classes, default_cfg=cfg)
    else:
        if input_size is None:
            raise ValueError(f"runtime_model: a {type(model).__name__} needs input_size=(C, H, W)")
        size = tuple(input_size)
        meta = dict(name=type(model).__name__, in_chans=size[0], min_size=(1, 1),
                    num_classes=getattr(model, "num_classes", 0), default_cfg=cfg)
    was_training = model.training
    model.eval()
    try:
        graph = to_onnx(model, size)
    finally:
        if was_training:
            model.train()
    return _CLASSES[backend](graph, threads=threads, options=options, **meta)
