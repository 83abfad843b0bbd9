"""Reading Keras weight files (``.h5``, ``.weights.h5``, ``.keras``) with h5py, into torch tensors.

Three formats hold Keras weights, and name their layers differently:

* the legacy HDF5 format (Keras 2 and ``tf.keras``: ``model.save_weights("w.h5")``, ``model.save("m.h5")``,
  and every ``keras.applications`` download such as ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5``):
  one group per layer, named by the layer's name, in the order of ``model.layers`` (the root's, or
  ``model_weights``', ``layer_names`` attribute), each listing its variables (``weight_names``). Layers the
  code did not name are named by a session-wide counter (``conv2d_94`` in one file, ``conv2d_188`` in the
  next), so only their order is reliable: Keras itself loads these files by order;
* Keras 3's ``.weights.h5``: ``layers/<name>/vars/<i>``, where ``<name>`` is the layer's class in snake
  case numbered in ``model.layers`` order (``conv2d``, ``conv2d_1``, ...), whatever the layers were named;
* ``.keras``: a zip holding ``model.weights.h5`` (as above) and ``config.json``.

Every layer is given its *canonical name*: its class in snake case numbered by its position among the
weighted layers of that class in ``model.layers`` order, which is Keras 3's own ``.weights.h5`` name and,
for legacy files, follows from their order. The committed key map of a model
(``<model>.keras.json``, generated from ``keras.applications`` by ``python -m inception_zoo.weights.keymaps``)
maps ``<canonical name>/<variable>`` to our keys.

Variables are converted to PyTorch's layouts: convolution kernels HWIO -> OIHW, depthwise kernels
(H, W, C, multiplier) -> (C · multiplier, 1, H, W), pointwise kernels like convolution kernels, dense
kernels (in, out) -> (out, in). A BatchNorm without ``gamma`` (Keras' ``scale=False``) gets ``gamma = 1``.
Each BatchNorm's ``epsilon`` is read from the model configuration when the file has one (``model.save``'s
``.h5`` and ``.keras``).
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, CheckpointNotFoundError

__all__ = ["KERAS_SUFFIXES", "KerasLayer", "check_layers", "is_keras_file", "keras_layers", "read_keras"]

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")

# Variables of each weighted layer class, in Keras' order (BatchNormalization: gamma only with scale=True).
_VARIABLES = {
    "conv2d": ("kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "depthwise_conv2d": ("depthwise_kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}
_KNOWN_CLASSES = {"Conv2D": "conv2d", "SeparableConv2D": "separable_conv2d", "DepthwiseConv2D": "depthwise_conv2d",
                  "Dense": "dense", "BatchNormalization": "batch_normalization"}


@dataclass
class KerasLayer:
    """One weighted layer of a Keras file: its canonical name (see the module's docstring), the name the
    file gives it, its class in snake case, its variables in Keras' layouts, and its BatchNorm epsilon if
    the file's configuration gives one."""

    canonical: str
    name: str
    kind: str
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    epsilon: float | None = None

    def describe(self) -> str:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.variables.items())
        return f"{self.canonical} (named {self.name!r} in the file: {shapes})"


def is_keras_file(path: str | os.PathLike) -> bool:
    """True for the file names Keras writes: ``.h5`` / ``.hdf5`` (``.weights.h5`` included) and ``.keras``."""
    return Path(path).suffix.lower() in KERAS_SUFFIXES


def _h5py():
    try:
        import h5py
    except ImportError:
        raise CheckpointError("reading Keras files needs h5py: pip install h5py") from None
    return h5py


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _kind_of(variables: list[str], shapes: list[tuple[int, ...]]) -> str:
    """The layer class of a legacy file's layer, from its variables' names (and the kernel's rank)."""
    names = set(variables)
    if {"moving_mean", "moving_variance"} <= names:
        return "batch_normalization"
    if {"depthwise_kernel", "pointwise_kernel"} <= names:
        return "separable_conv2d"
    if "depthwise_kernel" in names:
        return "depthwise_conv2d"
    if "kernel" in names:
        return "conv2d" if len(shapes[variables.index("kernel")]) == 4 else "dense"
    return "unknown"


def _array(dataset) -> np.ndarray:
    """A stored weight as a numeric array: as stored (float32, float16, ...), or, for Keras' bfloat16
    (which h5py reads as an opaque 2-byte type), widened to float32 exactly (bfloat16 is float32's upper
    half).

    Raises:
        CheckpointError: a dataset of another, non-numeric type, named.
    """
    value = np.asarray(dataset)
    if value.dtype.kind in "fiu":
        return value
    if value.dtype.kind == "V" and value.dtype.itemsize == 2:
        return (value.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    raise CheckpointError(f"the weight {dataset.name!r} holds {value.dtype} values, not numbers")


def _legacy_layers(root) -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """``(name, kind, variables)`` of a legacy file's weighted layers, in ``model.layers`` order. A nested
    model's group lists all its layers' variables (``block1_conv1/kernel:0``, ...): split by layer."""
    found = []
    for group_name in (_text(n) for n in root.attrs["layer_names"]):
        group = root[group_name]
        names = [_text(n) for n in group.attrs.get("weight_names", [])]
        by_layer: dict[str, list[tuple[str, np.ndarray]]] = {}
        for weight_name in names:
            layer, _, var = weight_name.rpartition("/")
            layer = layer.rsplit("/", 1)[-1] or group_name
            by_layer.setdefault(layer, []).append((var.split(":")[0], _array(group[weight_name])))
        for layer, items in by_layer.items():
            variables = [v for v, _ in items]
            kind = _kind_of(variables, [a.shape for _, a in items])
            found.append((layer, kind, dict(items)))
    return found


def _v3_layers(root, prefix: str = "layers") -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """``(name, kind, variables)`` of a Keras 3 ``.weights.h5``: ``layers/<name>/vars/<i>``, nested models
    (``layers/<model>/layers/...``) flattened. The names are class names numbered in ``model.layers``
    order; variables are numbered in Keras' order, named here from the class (a BatchNormalization with
    three variables has no gamma)."""
    found = []
    if prefix not in root:
        return found
    for name, group in root[prefix].items():
        if "layers" in group:
            found += _v3_layers(group, "layers")
        arrays = group.get("vars")
        if arrays is None or not len(arrays):
            continue
        values = [_array(arrays[str(i)]) for i in range(len(arrays))]
        kind = re.sub(r"_\d+$", "", name)
        expected = _VARIABLES.get(kind)
        if expected is None:
            found.append((name, "unknown", {str(i): v for i, v in enumerate(values)}))
            continue
        if kind == "batch_normalization" and len(values) == 3:
            expected = expected[1:]
        found.append((name, kind, dict(zip(expected, values))))
    return found


def _config_epsilons(config: dict) -> list[float | None]:
    """The epsilon of every BatchNormalization in a model configuration, in ``model.layers`` order (nested
    models' layers in place)."""
    out: list[float | None] = []
    for layer in config.get("config", {}).get("layers", []):
        if layer.get("class_name") == "BatchNormalization":
            out.append(layer.get("config", {}).get("epsilon"))
        elif isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
            out += _config_epsilons(layer)
    return out


def _open_h5(path: Path):
    """The HDF5 file, and the model configuration (a dict) when the file carries one."""
    h5py = _h5py()
    config = None
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if "model.weights.h5" not in names:
                    raise CheckpointError(f"{str(path)!r} is a zip without model.weights.h5: not a .keras file")
                if "config.json" in names:
                    config = json.loads(archive.read("config.json"))
                data = io.BytesIO(archive.read("model.weights.h5"))
            return h5py.File(data, "r"), config
        f = h5py.File(path, "r")
    except CheckpointError:
        raise
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise CheckpointError(
            f"{str(path)!r} is not a readable Keras file (truncated or corrupt?): {str(e).splitlines()[0]}"
        ) from None
    if "model_config" in f.attrs:
        try:
            config = json.loads(_text(f.attrs["model_config"]))
        except ValueError as e:
            f.close()
            raise CheckpointError(f"{str(path)!r} is not a readable Keras file: its model_config is no JSON "
                                  f"({e})") from None
    return f, config


def keras_layers(path: str | os.PathLike) -> list[KerasLayer]:
    """The weighted layers of a Keras file in ``model.layers`` order, with their canonical names.

    Raises:
        CheckpointNotFoundError: no such file.
        CheckpointError: not a readable HDF5 / ``.keras`` file (truncated, corrupt), no weights in it, or
            h5py missing.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    f, config = _open_h5(path)
    try:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            raw = _legacy_layers(root)
        else:
            raw = _v3_layers(root)
            # Keras 3 names are numbered in model.layers order per class: restore that order
            raw.sort(key=lambda item: _class_rank(item[0]))
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"{str(path)!r} is not a readable Keras file (truncated or corrupt?): {str(e).splitlines()[0]}"
        ) from None
    finally:
        f.close()
    if not raw:
        raise CheckpointError(f"{str(path)!r} holds no Keras layer weights")
    counts: Counter[str] = Counter()
    layers = []
    for name, kind, variables in raw:
        index = counts[kind]
        counts[kind] += 1
        layers.append(KerasLayer(kind if index == 0 else f"{kind}_{index}", name, kind, variables))
    if config is not None:
        epsilons = _config_epsilons(config)
        norms = [layer for layer in layers if layer.kind == "batch_normalization"]
        if len(epsilons) == len(norms):
            for layer, eps in zip(norms, epsilons):
                layer.epsilon = eps
    return layers


def _class_rank(name: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
    return match.group(1), int(match.group(2) or 0)


def _to_torch(kind: str, var: str, value: np.ndarray) -> torch.Tensor:
    """A Keras variable in PyTorch's layout."""
    t = torch.from_numpy(np.ascontiguousarray(value))
    if var == "depthwise_kernel":  # (H, W, C, multiplier) -> (C * multiplier, 1, H, W)
        h, w, c, m = t.shape
        return t.permute(2, 3, 0, 1).reshape(c * m, 1, h, w).contiguous()
    if var in ("kernel", "pointwise_kernel"):
        return t.permute(3, 2, 0, 1).contiguous() if t.dim() == 4 else t.t().contiguous()
    return t


def read_keras(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A Keras file as a state dict keyed ``<canonical layer>/<variable>`` (``conv2d_5/kernel``,
    ``batch_normalization_5/moving_mean``), in PyTorch's layouts, with ``gamma`` = 1 added to the
    BatchNorms Keras built without one; and metadata: ``{"format": "keras", "keras_layers": <JSON list of
    [canonical, name in the file, kind, {variable: shape}, epsilon]>}``.

    Raises:
        CheckpointNotFoundError / CheckpointError: as :func:`keras_layers`.
    """
    layers = keras_layers(path)
    state: dict[str, torch.Tensor] = {}
    for layer in layers:
        for var, value in layer.variables.items():
            state[f"{layer.canonical}/{var}"] = _to_torch(layer.kind, var, value)
        if layer.kind == "batch_normalization" and "gamma" not in layer.variables and "beta" in layer.variables:
            state[f"{layer.canonical}/gamma"] = torch.ones_like(state[f"{layer.canonical}/beta"])
    described = [
        [layer.canonical, layer.name, layer.kind, {k: list(v.shape) for k, v in layer.variables.items()},
         layer.epsilon]
        for layer in layers
    ]
    return state, {"format": "keras", "keras_layers": json.dumps(described)}


def check_layers(model_name: str, mapping: dict[str, str], target: dict[str, torch.Size],
                 state: dict[str, torch.Tensor], described: list, *, classifier: str = "head.fc.",
                 first_weight: str | None = None) -> None:
    """Compare a Keras file's layers with what the model's key map expects, layer by layer in
    ``model.layers`` order, and raise at the first that differs (missing, of another class, another shape,
    or extra), naming it. The classifier (the last Dense) may be absent (into a model built with
    ``num_classes=0``), shaped for another number of classes (the loader then re-initializes it with a
    warning), or present where the model has none (skipped); the first convolution (``first_weight``) may
    have another number of input channels (the loader adapts RGB weights to ``in_chans``).

    Raises:
        CheckpointError: naming the first mismatching layer and what the model expects there.
    """
    expected: dict[str, list[str]] = {}
    for key in mapping:
        layer, _, var = key.partition("/")
        expected.setdefault(layer, []).append(var)
    found = {entry[0]: entry for entry in described}
    order = list(expected)
    for i, layer in enumerate(order):
        wants_classifier = all(mapping[f"{layer}/{v}"].startswith(classifier) for v in expected[layer])
        entry = found.get(layer)
        if entry is None:
            if wants_classifier and not any(mapping[f"{layer}/{v}"] in target for v in expected[layer]):
                continue  # a model built without a classifier (num_classes=0)
            if wants_classifier:
                raise CheckpointError(
                    f"{model_name}: the Keras file has no classifier (a model saved with include_top=False); "
                    "build the model with num_classes=0 to load it as a backbone"
                )
            raise CheckpointError(
                f"{model_name}: the Keras file has no layer {layer} (weighted layer {i + 1} of {len(order)} in "
                f"keras.applications' order; {_expected_vars(expected[layer], mapping, layer, target)} expected)"
            )
        for var in expected[layer]:
            key, ours = f"{layer}/{var}", mapping[f"{layer}/{var}"]
            if key not in state:
                raise CheckpointError(f"{model_name}: Keras layer {_named(entry)} has no {var!r} variable")
            if ours not in target:  # the classifier, into a model built without one (num_classes=0): skipped
                continue
            got, want = tuple(state[key].shape), tuple(target[ours])
            adapted = ours == first_weight and got[:1] + got[2:] == want[:1] + want[2:]  # in_chans != 3
            if got != want and not adapted and not ours.startswith(classifier):
                raise CheckpointError(
                    f"{model_name}: Keras layer {_named(entry)} does not fit: {var} has shape "
                    f"{tuple(entry[3].get(var, ()))} (PyTorch layout {tuple(state[key].shape)}), the model's "
                    f"{ours} is {tuple(target[ours])}"
                )
    extra = [entry for entry in described if entry[0] not in expected]
    if extra:
        raise CheckpointError(f"{model_name}: the Keras file has a layer the model does not: {_named(extra[0])}"
                              + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))


def _named(entry: list) -> str:
    canonical, name, kind, shapes, _ = entry
    text = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
    return f"{canonical} ({kind} named {name!r} in the file: {text})"


def _expected_vars(variables: list[str], mapping: dict[str, str], layer: str, target: dict[str, torch.Size]) -> str:
    return ", ".join(f"{v} for {mapping[f'{layer}/{v}']} {tuple(target[mapping[f'{layer}/{v}']])}"
                     for v in variables[:2])
