"""``optimize_for_inference``: an equivalent, eval-only :class:`DeployedInceptionNet`."""

from __future__ import annotations

import copy
import statistics
import time
import warnings

import torch
from torch import nn

from ..layers import BasicConv2d, InceptionModule, PreActivation, SeparableConv2d
from ..models import FeatureExtractor, InceptionNet
from ..models.checks import check_input
from .convs import FusedResidual, deploy_conv, fold_batchnorm, preactivation_conv
from .merge import MergedInceptionModule
from .runtimes import BACKENDS, RUNTIMES, available_backends, check_options, check_threads, runtime_model

__all__ = ["DeployedInceptionNet", "optimize_for_inference", "time_backends"]


def _fold_scale(block: BasicConv2d, scale: float) -> None:
    """Multiply a (BN-folded) conv block's output by ``scale``, in its weight and bias."""
    conv = block.conv.pointwise if isinstance(block.conv, SeparableConv2d) else block.conv
    with torch.no_grad():
        conv.weight.mul_(scale)
        if conv.bias is not None:
            conv.bias.mul_(scale)


def _fuse_residual(block: nn.Module, parts) -> FusedResidual:
    """A residual block (one with ``residual_parts()``, e.g. Inception-ResNet's and Xception's) as a
    :class:`FusedResidual`: its sum and ReLU run inside its convolution."""
    if parts.scale != 1.0:
        _fold_scale(parts.conv, parts.scale)
    body, conv = _convert(parts.body), deploy_conv(parts.conv)
    if isinstance(conv, nn.Sequential):  # a separable convolution: its depthwise half joins the body
        if parts.on_shortcut:
            raise TypeError(f"{type(block).__name__}: a separable shortcut convolution cannot take the sum")
        body, conv = nn.Sequential(body, conv[0]), conv[1]
    conv.relu = parts.act
    return FusedResidual(body, conv, on_shortcut=parts.on_shortcut)


def _convert(module: nn.Module) -> nn.Module:
    """The deploy form of a module whose BatchNorms are folded: conv blocks as :class:`DeployConv2d`,
    residual blocks fused, Inception modules with parallel 1×1 convolutions merged; recursively."""
    if isinstance(module, BasicConv2d):
        return deploy_conv(module)
    if isinstance(module, PreActivation):
        return preactivation_conv(module)
    # residual_parts() may say None: a block whose sum cannot be fused (its children are converted instead)
    parts = module.residual_parts() if callable(getattr(module, "residual_parts", None)) else None
    if parts is not None:
        return _fuse_residual(module, parts)
    if isinstance(module, InceptionModule) and MergedInceptionModule.can_merge(module):
        module = MergedInceptionModule(module)
    for name, child in list(module.named_children()):
        setattr(module, name, _convert(child))
    return module


class DeployedInceptionNet(nn.Module):
    """An eval-only copy of an :class:`~inception_zoo.InceptionNet` that computes the same function with
    less work (see :func:`optimize_for_inference`): ``features`` and ``head`` as in the model, rewritten.

    Forward: (B, in_chans, H, W) float in any memory format -> (B, num_classes) logits, as the model in
    eval mode; ``forward_features`` and ``forward_head`` as the model's. Input is checked as the model
    checks it (ValueError naming what was expected).

    Serving: one instance can be called from many threads at once (no forward changes any state), and
    every change of its weights, by any route, is seen by the next forward (nothing derived from the
    weights is kept between calls; see :class:`DeployConv2d`). Its tensors are ordinary ones even when
    deployed or converted under ``torch.inference_mode()``.

    Raises:
        RuntimeError: on ``train()`` (BatchNorm is folded: there is nothing to train).
    """

    backend = "torch"  # as optimize_for_inference names it (RuntimeModel.backend for the runtimes)

    def __init__(self, model: InceptionNet) -> None:
        super().__init__()
        with torch.inference_mode(False):  # ordinary tensors even when deployed under inference_mode
            self._build(model)
            self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        super().train(False)

    def _build(self, model: InceptionNet) -> None:
        model = copy.deepcopy(model).eval()
        for m in model.modules():
            if isinstance(m, BasicConv2d):
                fold_batchnorm(m)
        self.features = _convert(model.features)
        self.head = model.head
        self.name, self.in_chans = model.name, model.in_chans
        self.num_classes, self.num_features = model.num_classes, model.num_features
        self.head_hidden_size = getattr(model, "head_hidden_size", model.num_features)
        self.default_cfg = self.pretrained_cfg = model.default_cfg
        self._min_size = model._min_size
        self.register_buffer("_dtype_probe", torch.zeros(0, dtype=model._dtype_probe.dtype), persistent=False)

    def _apply(self, fn, recurse=True):
        with torch.inference_mode(False):  # .to() / .half() under inference_mode keep ordinary tensors too
            return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> "DeployedInceptionNet":
        if mode:
            raise RuntimeError(f"{self.name} was optimized for inference (BatchNorm folded); it cannot be trained")
        return super().train(False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> the last feature map, unpooled (channels_last)."""
        check_input(x, self)
        return self.features(x.contiguous(memory_format=torch.channels_last))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits (B, num_classes), or the pooled features if ``pre_logits``."""
        return self.head(x, pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def optimize_for_inference(
    model: nn.Module, backend: str = "auto", *, batch_size: int = 1, threads: int | None = None,
    options: dict | None = None,
) -> nn.Module:
    """An equivalent eval-only copy of ``model`` for deployment, in the fastest backend this machine has;
    the model itself is not changed.

    Backends:

    * ``"torch"``: a :class:`DeployedInceptionNet`, plain PyTorch modules in deploy form: BatchNorm folded
      into the convolution before it and residual scales into the up-projections; the parallel 1×1
      convolutions of each Inception module merged into one (the pool branch's projection moved before its
      pool, which then pools fewer channels); auxiliary heads dropped; each convolution fused with its
      ReLU (and residual sum) into one oneDNN call on CPU, float32 or bfloat16 under CPU autocast,
      channels_last. It sees later weight changes, serves many threads, runs on any device, in any dtype
      and in ``torch.compile``/``torch.export``, and keeps ``forward_features``.
    * ``"onnxruntime"`` / ``"openvino"``: the eval-mode model exported to ONNX (auxiliary heads unused) and
      run by that runtime on CPU in float32 (a :class:`~inception_zoo.deploy.runtimes.RuntimeModel`: torch
      tensors in and out, any batch and size; no autograd, a snapshot of the weights, logits only). Both
      runtimes fold BatchNorm and fuse activations themselves; the merged 1×1 convolutions of the deploy
      form are left out of their graph, as ONNX Runtime measured slower with them (the ``Split`` they need
      breaks its blocked layout: Inception v3, batch 8, 2 threads: 816 against 729 ms). Needs the package
      (``pip install "inception_zoo[deploy]"``) and float32 weights on the CPU.
    * ``"auto"`` (default): every installed backend that can run the model (the runtimes only for float32
      CPU weights) is built and timed on this machine at ``batch_size`` images of the model's default input
      size (alternating, a few forwards each, medians), and the fastest is returned; the times are in its
      ``backend_times_ms``. The choice is remembered for the process (per model name, channels, classes,
      input size, batch size, threads and options), with its times. A runtime installed but failing to
      import or build is skipped with a warning. Takes seconds (the export and the timing); pass a
      backend to skip it.

    ``threads``: the runtime backends' intra-op threads (default ``torch.get_num_threads()``; the torch
    backend uses torch's). ``options``: the runtime backends' own settings, by their names (ONNX Runtime
    session config entries, strings; OpenVINO properties; the torch backend ignores them), for a backend
    named as a flat dict, e.g. ``{"session.intra_op.allow_spinning": "0"}`` where torch code runs between
    ONNX Runtime calls (see :class:`~inception_zoo.deploy.runtimes.RuntimeModel`), for ``"auto"`` per
    runtime: ``{"onnxruntime": {...}, "openvino": {...}}`` (that form works for a named backend too).
    Outputs equal the model's in eval mode up to float rounding (tested at 1e-4 relative for every model
    and backend).

    Raises:
        TypeError: ``model`` is not an inception_zoo classifier (a ``features_only`` extractor included:
            deploy the classifier and call its ``forward_features``).
        ValueError: an unknown ``backend``; ``batch_size`` or ``threads`` not a positive integer; ``options``
            not a dict, flat with ``"auto"``, setting threads or precision, or refused by the runtime asked
            for by name; a runtime backend asked for by name with a model not float32 on the CPU.
        ImportError: a runtime backend asked for by name is not installed.
    """
    if isinstance(model, FeatureExtractor):
        raise TypeError("optimize_for_inference expects an inception_zoo classifier; features_only extractors "
                        "are not supported (deploy the classifier and call forward_features on it)")
    if not isinstance(model, InceptionNet):
        raise TypeError(f"optimize_for_inference expects an inception_zoo model, got {type(model).__name__}")
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {', '.join(BACKENDS)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    threads, options = check_threads(threads), _per_runtime(check_options(options), backend)
    if backend == "torch":
        return DeployedInceptionNet(model)
    if backend != "auto":
        return runtime_model(model, backend, threads=threads, options=options.get(backend))
    return _fastest(model, batch_size, threads, options)


def _per_runtime(options: dict, backend: str) -> dict:
    """``options`` as {runtime: its options}: a per-runtime dict as it is, a flat one for the backend
    named. Raises ValueError for a flat dict with ``"auto"`` (it would reach both runtimes) and a
    per-runtime entry that is not a dict."""
    if options and set(options) <= set(RUNTIMES):
        for runtime, entry in options.items():
            check_options(entry, runtime)
        return options
    if options and backend == "auto":
        raise ValueError("with backend='auto', give options per runtime, e.g. {'onnxruntime': "
                         "{'session.intra_op.allow_spinning': '0'}, 'openvino': {...}}; a flat dict is for "
                         "a backend named")
    return {backend: options} if options else {}


# (name, channels, classes, input size, batch, threads, options, candidates) -> (fastest backend, every one's ms)
_CHOICES: dict[tuple, tuple[str, dict[str, float]]] = {}


def _build(model: InceptionNet, backend: str, threads: int, options: dict) -> nn.Module | None:
    """``model`` in ``backend`` for :func:`_fastest`; None, with a warning, where a runtime that looked
    installed fails to import or to build."""
    if backend == "torch":
        return DeployedInceptionNet(model)
    try:
        return runtime_model(model, backend, threads=threads, options=options.get(backend))
    except Exception as e:  # a broken install or a runtime's own failure: the other backends still serve
        warnings.warn(f"optimize_for_inference: backend {backend!r} skipped, it failed: "
                      f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)
        return None


def _fastest(model: InceptionNet, batch_size: int, threads: int, options: dict) -> nn.Module:
    """The fastest backend for ``model`` at ``batch_size`` (see :func:`optimize_for_inference`)."""
    probe = model._dtype_probe
    runtimes_can = probe.dtype == torch.float32 and probe.device.type == "cpu"
    candidates = tuple(b for b in available_backends() if b == "torch" or runtimes_can)
    size = tuple(model.default_cfg["input_size"])
    key = (model.name, model.in_chans, model.num_classes, size, batch_size, threads, repr(options), candidates)
    if key in _CHOICES:
        choice, times = _CHOICES[key]
        chosen = _build(model, choice, threads, options)
        if chosen is not None:
            chosen.backend_times_ms = dict(times)
            return chosen
    built = {b: m for b in candidates if (m := _build(model, b, threads, options)) is not None}
    if len(built) == 1:  # nothing to compare with (the torch backend alone, e.g. a half model)
        choice, times = "torch", {}
    else:
        x = torch.randn(batch_size, *size, dtype=probe.dtype, device=probe.device)
        times = time_backends(built, x)
        choice = min(times, key=times.get)
    _CHOICES[key] = (choice, times)
    best = built[choice]
    best.backend_times_ms = dict(times)
    return best


def time_backends(models: dict[str, nn.Module], x: torch.Tensor, rounds: int = 5) -> dict[str, float]:
    """Median milliseconds per forward of each model on ``x``: one untimed forward each, then ``rounds``
    rounds with the order rotated each round (so drift of the machine falls on all alike), each timed
    forward after an untimed one of the same model (ONNX Runtime's threads spin for 10-50 ms after a call,
    slowing whatever runs next: a torch forward right after one measured 2.2x its time)."""
    names = list(models)
    samples: dict[str, list[float]] = {n: [] for n in names}
    with torch.no_grad():
        for n in names:
            models[n](x)
        for r in range(rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                models[n](x)
                start = time.perf_counter()
                models[n](x)
                samples[n].append((time.perf_counter() - start) * 1000)
    return {n: statistics.median(v) for n, v in samples.items()}
