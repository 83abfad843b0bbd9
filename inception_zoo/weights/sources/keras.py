"""Keras' applications (``keras.applications.InceptionV3``, ``InceptionResNetV2``, ``Xception``) with the
torch backend: the reference model of the Keras tests, and the generator of the committed Keras key maps.

A Keras model's weighted layers are paired with ours through the graph, not by shapes alone: convolutions
(plain and separable) and the classifier in the order the application code creates them, which is the
order of our modules (branches in concatenation order, each front to back); each BatchNormalization with
the convolution that feeds it. The key map is keyed by the layers' canonical names (class in snake case,
numbered in ``model.layers`` order: see :mod:`inception_zoo.weights.keras`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from torch import nn

from . import PeerModel

FRAMEWORK = "keras"  # not a torch.nn.Module: no benchmark or fvcore count of it (see torch_peers)

# The classes whose instances hold weights in these three applications.
_CONVS = ("Conv2D", "SeparableConv2D")


def import_keras():
    """``keras`` with the torch backend (set unless the user chose another before importing it)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def _build(application: str):
    def build(aux: bool = False, **kwargs):
        keras = import_keras()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(keras.applications, application)(weights=None, classifier_activation=None, **kwargs)

    return build


def count_params(model) -> int:
    """A Keras model's parameter count in PyTorch's sense: its trainable weights, plus the gamma its
    BatchNorms built with ``scale=False`` leave out (a constant 1 in Keras, a parameter of PyTorch's
    BatchNorm2d); the moving statistics are buffers, not parameters, as in PyTorch."""
    keras = import_keras()
    count = sum(int(w.numpy().size) for w in model.trainable_weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.scale:
            count += int(layer.moving_mean.shape[0])
    return count


MODELS = {name: PeerModel(_build(name), classifier=("predictions",), params=count_params)
          for name in ("InceptionV3", "InceptionResNetV2", "Xception")}


def _created_in_order(build) -> tuple[object, list]:
    """The Keras model ``build()`` returns, and its layers in the order they were created."""
    keras = import_keras()
    created: list = []
    original = keras.layers.Layer.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        created.append(self)

    keras.layers.Layer.__init__ = record
    try:
        model = build(False)
    finally:
        keras.layers.Layer.__init__ = original
    return model, created


def canonical_names(model) -> dict[int, str]:
    """id(layer) -> canonical name (class in snake case numbered in ``model.layers`` order) of every
    weighted layer: Keras 3's own ``.weights.h5`` names."""
    from keras.src.utils import naming

    counts: dict[str, int] = {}
    names = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        kind = naming.to_snake_case(type(layer).__name__)
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        names[id(layer)] = kind if index == 0 else f"{kind}_{index}"
    return names


def _ours(net: nn.Module) -> tuple[list[tuple[str, nn.Module]], dict[str, str]]:
    """Our convolution units in registration order (a separable convolution is one unit) and, for each, the
    BatchNorm that follows it (the sibling ``bn`` of its conv block), by module name."""
    from ...layers.conv import SeparableConv2d

    units, norms = [], {}
    modules = dict(net.named_modules())
    inside_separable = set()
    for name, module in net.named_modules():
        if isinstance(module, SeparableConv2d):
            inside_separable.update({f"{name}.depthwise", f"{name}.pointwise"})
            units.append((name, module))
        elif isinstance(module, nn.Conv2d) and name not in inside_separable:
            units.append((name, module))
    for name, _ in units:
        parent = name.rsplit(".", 1)[0]
        bn = modules.get(f"{parent}.bn")
        if isinstance(bn, nn.BatchNorm2d):
            norms[name] = f"{parent}.bn"
    return units, norms


def generate(record, peer) -> dict[str, str]:
    """``<canonical layer>/<variable>`` -> our key for ``record`` against ``keras.applications.<peer.model>``
    (built at 299×299 with its classifier; ``gamma`` listed for every BatchNorm, the loader fills it where
    Keras has none).

    Raises:
        ValueError: the two models differ (another number of convolutions, a shape, a BatchNorm that
            follows no convolution of ours).
    """
    import torch

    from ...models import InceptionNet

    model, created = _created_in_order(MODELS[peer.model].build)
    with torch.device("meta"):
        net = InceptionNet(record)
    target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    canonical = canonical_names(model)
    units, norms = _ours(net)
    convs = [layer for layer in created if type(layer).__name__ in _CONVS and layer.weights]
    if len(convs) != len(units):
        raise ValueError(f"{record.name}: keras {peer.model} has {len(convs)} convolutions, ours {len(units)}")
    mapping: dict[str, str] = {}
    paired: dict[int, str] = {}  # id(keras conv) -> our unit

    def put(layer, var: str, ours: str, shape: tuple) -> None:
        if target[ours] != shape:
            raise ValueError(f"{record.name}: keras {layer.name}/{var} {shape} vs our {ours} {target[ours]}")
        mapping[f"{canonical[id(layer)]}/{var}"] = ours

    for layer, (name, module) in zip(convs, units):
        paired[id(layer)] = name
        if type(layer).__name__ == "SeparableConv2D":
            h, w, c, m = layer.depthwise_kernel.shape
            put(layer, "depthwise_kernel", f"{name}.depthwise.weight", (c * m, 1, h, w))
            kh, kw, cin, cout = layer.pointwise_kernel.shape
            put(layer, "pointwise_kernel", f"{name}.pointwise.weight", (cout, cin, kh, kw))
            if layer.use_bias:
                put(layer, "bias", f"{name}.pointwise.bias", tuple(layer.bias.shape))
        else:
            kh, kw, cin, cout = layer.kernel.shape
            put(layer, "kernel", f"{name}.weight", (cout, cin, kh, kw))
            if layer.use_bias:
                put(layer, "bias", f"{name}.bias", tuple(layer.bias.shape))
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            source = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
            unit = paired.get(id(source))
            if unit is None or unit not in norms:
                raise ValueError(f"{record.name}: keras {layer.name} follows {source.name}, which is no "
                                 "convolution with a BatchNorm of ours")
            bn = norms[unit]
            for var, ours in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                              ("moving_variance", "running_var")):
                put(layer, var, f"{bn}.{ours}", target[f"{bn}.{ours}"])
        elif kind == "Dense":
            put(layer, "kernel", "head.fc.weight", tuple(layer.kernel.shape)[::-1])
            put(layer, "bias", "head.fc.bias", tuple(layer.bias.shape))
        elif layer.weights and kind not in _CONVS:
            raise ValueError(f"{record.name}: keras {layer.name} ({kind}) holds weights no rule maps")
    unmapped = [k for k in target if k not in mapping.values() and not k.endswith("num_batches_tracked")]
    if unmapped:
        raise ValueError(f"{record.name}: no keras weight maps to {unmapped[:5]}")
    order = list(canonical.values())
    _check_with_keras3_file(model, mapping)
    return dict(sorted(mapping.items(), key=lambda kv: order.index(kv[0].split("/")[0])))


def _check_with_keras3_file(model, mapping: dict[str, str]) -> None:
    """The canonical names are Keras 3's own: save a ``.weights.h5`` and read it back."""
    from ..keras import keras_layers

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.weights.h5"
        model.save_weights(path)
        saved = {layer.canonical for layer in keras_layers(path)}
    named = {key.split("/")[0] for key in mapping}
    if saved != named:
        raise ValueError(f"Keras' .weights.h5 names differ from the canonical names: {sorted(saved ^ named)[:5]}")
