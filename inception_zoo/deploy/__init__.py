"""Deploy mode: an equivalent, eval-only model that does less work per image.

* :mod:`.model`: :func:`optimize_for_inference` and :class:`DeployedInceptionNet`;
* :mod:`.convs`: :class:`DeployConv2d` (BN folded, ReLU / residual sum fused into one oneDNN call),
  :class:`FusedResidual`;
* :mod:`.merge`: :class:`MergedInceptionModule` (an Inception module's parallel 1×1 convolutions as one);
* :mod:`.runtimes`: a model exported to ONNX, in ONNX Runtime or OpenVINO (:class:`RuntimeModel`);
* :mod:`.quantize`: int8 post-training static quantization (:func:`quantize`, ONNX Runtime or torchao);
* :mod:`inception_zoo._onednn`: the private PyTorch calls it relies on, version-gated in one place.

Blocks take part through a hook: a residual block with ``residual_parts()`` (see
:class:`~inception_zoo.layers.ResidualParts`) gets its sum fused; the core never imports this package.
"""

from .convs import DeployConv2d, FusedResidual, fold_batchnorm
from .merge import MergedInceptionModule
from .model import DeployedInceptionNet, optimize_for_inference, time_backends
from .int8_files import calibration_images, load_quantized, save_quantized
from .quantize import QUANT_BACKENDS, QuantizedOnnxModel, TorchAOModel, quantize
from .runtimes import BACKENDS, OnnxRuntimeModel, OpenVINOModel, RuntimeModel, available_backends, runtime_model, to_onnx

__all__ = [
    "optimize_for_inference",
    "DeployedInceptionNet",
    "DeployConv2d",
    "FusedResidual",
    "MergedInceptionModule",
    "fold_batchnorm",
    "BACKENDS",
    "available_backends",
    "runtime_model",
    "to_onnx",
    "time_backends",
    "RuntimeModel",
    "OnnxRuntimeModel",
    "OpenVINOModel",
    "quantize",
    "QUANT_BACKENDS",
    "QuantizedOnnxModel",
    "TorchAOModel",
    "calibration_images",
    "save_quantized",
    "load_quantized",
]
