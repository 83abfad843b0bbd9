"""One record per model: everything the package knows about a network, next to its layout.

A :class:`ModelRecord` holds the layout (the paper's table as layer specs), the conv block options, the
input configuration, the paper and what it reports, the exact parameter counts, the auxiliary heads, the
training recipe and the peer implementations whose checkpoints map onto it. The registry, the generic
builder (:class:`~inception_zoo.InceptionNet`), the docs, the benchmark, training and the tests all read
records, so a new model is one record in one file::

    register_model(ModelRecord(name="my_net", summary="...", paper=Paper(...), layout=(...), ...))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .layers import AuxSpec, BasicConv2d, ConvLayer, LayerSpec

__all__ = [
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "IMAGENET_INCEPTION_MEAN",
    "IMAGENET_INCEPTION_STD",
    "Paper",
    "Recipe",
    "Peer",
    "ModelRecord",
]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Paper:
    """A paper a model follows, with what it reports about the model (None where it reports nothing).

    ``params`` is a parameter count; ``macs`` counts multiply-adds (one fused multiply-add = one) for one
    image at the paper's input size. ``note`` says how exact the reported figures are. ``top1`` is the
    ImageNet validation top-1 accuracy in percent that the paper reports for a single model evaluated on a
    single crop, ``top1_note`` where it is reported."""

    title: str
    arxiv: str
    params: int | None = None
    macs: int | None = None
    note: str = ""
    top1: float | None = None
    top1_note: str = ""


@dataclass(frozen=True)
class Recipe:
    """A paper's optimizer and schedule: every ``decay_every`` epochs the learning rate is multiplied by
    ``decay``; ``aux_weight`` weights each auxiliary loss; ``clip_grad`` is a gradient-norm limit."""

    optimizer: str
    lr: float
    decay: float
    decay_every: int
    label_smoothing: float
    aux_weight: float
    clip_grad: float | None = None
    weight_decay: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class Peer:
    """Another library's implementation of the same network, whose checkpoints load here.

    ``source`` is the library (``"torchvision"``, ``"timm"``, ``"pytorchcv"``), ``model`` its model name.
    The key map (peer key -> our key) is a committed table in ``inception_zoo/weights/keymaps/``; the
    peer library is needed only to regenerate it. ``transform_input``: the peer's published weights
    expect torchvision's input transform (folded into our first convolution on conversion)."""

    source: str
    model: str
    transform_input: bool = False


@dataclass(frozen=True)
class ModelRecord:
    """Everything about one model. Built by :class:`~inception_zoo.InceptionNet`, listed by the registry.

    Attributes:
        name: the registered name (``create_model(name)``); ``aliases`` are other names for it.
        summary: one line for the README table (the paper and how this layout relates to it).
        paper: the paper and the figures it reports.
        layout: ``((stage_name, spec), ...)`` in forward order; the stage names are the weight keys'
            second part (``features.Mixed_5b...``).
        conv: the keyword options of the family's :class:`~inception_zoo.layers.BasicConv2d`
            (``bn``, ``bn_eps``, ``bias``).
        input_size, min_input_size: (C, H, W) of the default and the smallest input.
        mean, std, interpolation, crop_pct: the preprocessing, in timm's conventions.
        drop_rate: the paper's dropout before the classifier.
        num_classes: the default number of classes.
        aux_heads: the auxiliary classifiers the architecture defines (built with ``aux_logits=True``).
        params: the exact parameter count at the defaults; ``params_aux`` with the auxiliary heads.
        recipe: the paper's training recipe (``inception-zoo train --recipe paper``), if it gives one.
        peers: implementations in other libraries whose checkpoints load into this model.
    """

    name: str
    summary: str
    paper: Paper
    layout: tuple[tuple[str, LayerSpec], ...]
    conv: dict[str, Any]
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    drop_rate: float
    params: int
    num_classes: int = 1000
    aux_heads: tuple[AuxSpec, ...] = ()
    params_aux: int | None = None
    recipe: Recipe | None = None
    peers: tuple[Peer, ...] = ()
    aliases: tuple[str, ...] = ()
    doc: str = field(default="", compare=False)

    def conv_layer(self) -> ConvLayer:
        """The family's conv block: :class:`~inception_zoo.layers.BasicConv2d` with ``conv`` bound."""
        return partial(BasicConv2d, **self.conv)

    def default_cfg(self) -> dict[str, Any]:
        """The model's default configuration in timm's conventions (``input_size`` (C, H, W), ``crop_pct``
        the centre-crop fraction of the resized image), plus the paper and the figures it reports.
        ``num_classes``, ``first_conv`` and ``classifier`` are filled in by the built model."""
        return {
            "architecture": self.name,
            "input_size": self.input_size,
            "min_input_size": self.min_input_size,
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "paper": {"title": self.paper.title, "arxiv": self.paper.arxiv},
            "paper_params": self.paper.params,
            "paper_macs": self.paper.macs,
            "paper_note": self.paper.note,
            "paper_top1": self.paper.top1,
            "paper_top1_note": self.paper.top1_note,
        }
