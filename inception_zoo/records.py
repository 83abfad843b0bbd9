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

from .layers import AuxSpec, BasicConv2d, ConvLayer, EmbeddingSpec, LayerSpec

__all__ = [
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "IMAGENET_INCEPTION_MEAN",
    "IMAGENET_INCEPTION_STD",
    "IMAGENET_CLASSES",
    "InputConvention",
    "TORCHVISION_TRANSFORM_INPUT",
    "Paper",
    "Recipe",
    "Peer",
    "Pretrained",
    "ModelRecord",
]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)
IMAGENET_CLASSES = 1000  # ImageNet-1k; TF-slim's label map puts a "background" class before them (1001)


@dataclass(frozen=True)
class InputConvention:
    """The input a peer model's first convolution takes, and the normalization our model takes once that
    convention is folded into our first convolution on conversion (:func:`~inception_zoo.load_pretrained`).

    The peer's first convolution sees, for each channel ``k`` in ``input_space`` order (``"RGB"`` or
    ``"BGR"``), ``(input_range * p[k] - mean[k]) / std[k]``: ``p`` the image scaled to [0, 1], ``input_range``
    1 or 255, ``mean`` / ``std`` in those units and that channel order (pretrainedmodels' ``input_space``,
    ``input_range``, ``mean``, ``std`` settings). After the fold our model takes
    ``(p[c] - folded_mean[c]) / folded_std[c]`` in RGB order, and ``default_cfg`` mean / std say so.

    The fold reorders and scales the first convolution's input channels and moves a per-channel constant
    into its bias (or, without one, into the running mean of the BatchNorm after it). It is exact when
    ``folded_mean`` is ``mean / input_range`` in RGB order: both models then pad with the same pixel value.
    Otherwise it is exact away from the borders of a zero-padded first convolution, where the two zero
    paddings are different pixels (torchvision's transform: about 1e-7 of the logits, tested)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    folded_mean: tuple[float, float, float]
    folded_std: tuple[float, float, float]
    input_space: str = "RGB"
    input_range: float = 1.0

    def __post_init__(self) -> None:
        """Raises: ValueError: an input space other than RGB / BGR, or not three channels."""
        if self.input_space not in ("RGB", "BGR"):
            raise ValueError(f"InputConvention.input_space must be 'RGB' or 'BGR', got {self.input_space!r}")
        if not all(len(v) == 3 for v in (self.mean, self.std, self.folded_mean, self.folded_std)):
            raise ValueError("InputConvention: mean, std, folded_mean and folded_std need 3 values each")


# torchvision's transform_input: ImageNet-normalized input is mapped back to (p - 0.5) / 0.5 inside the model.
TORCHVISION_TRANSFORM_INPUT = InputConvention(
    mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD,
    folded_mean=IMAGENET_DEFAULT_MEAN, folded_std=IMAGENET_DEFAULT_STD,
)


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

    ``source`` is the library (``"torchvision"``, ``"timm"``, ``"pytorchcv"``, ``"pytorch_fid"``,
    ``"facenet"`` for facenet-pytorch, ``"cadene"`` for Cadene's pretrainedmodels), ``model`` its model name.
    The key map (peer key -> our key) is a committed table in ``inception_zoo/weights/keymaps/``; the
    peer library is needed only to regenerate it.

    Conventions of the peer's published weights, applied on conversion: ``transform_input``: they expect
    torchvision's input transform; ``input_convention``: another input its first convolution takes (Cadene's
    BN-Inception: BGR in 0-255 minus a mean). Either is folded into our first convolution (see
    :class:`InputConvention` and :attr:`folded_input`). ``background_class``: its ImageNet files have
    1001 classes, a "background" class 0 before ImageNet-1k's 1000 (TF-slim's label map); loaded into a
    1000-class model, that row is dropped (with a warning), as the peer's own 1000-class loader does."""

    source: str
    model: str
    transform_input: bool = False
    input_convention: InputConvention | None = None
    background_class: bool = False

    @property
    def folded_input(self) -> InputConvention | None:
        """The input convention folded into our first convolution on conversion: ``input_convention``, or
        torchvision's transform where ``transform_input``; None where the peer takes our input as it is."""
        if self.input_convention is not None:
            return self.input_convention
        return TORCHVISION_TRANSFORM_INPUT if self.transform_input else None


@dataclass(frozen=True)
class Pretrained:
    """One published checkpoint of a model: ``create_model("<model>.<tag>", pretrained=True)``.

    Where it lives: ``url`` (downloaded with ``torch.hub.load_state_dict_from_url`` into
    ``$TORCH_HOME/hub/checkpoints``) or ``hf_hub`` = (repo id, file name) (downloaded with
    ``huggingface_hub.hf_hub_download`` into ``$HF_HOME/hub``). ``source`` is the key layout of the file
    (``"torchvision"``, ``"timm"``, ``"pytorchcv"``, ``"pytorch_fid"``, ``"cadene"``, ``"facenet"``: converted
    through the committed key map).
    ``sha256``: the hash prefix the source publishes in the file name (checked by torch.hub on download);
    ``sha1``: pytorchcv's, of the ``.pth`` inside its zip (checked after download); ``md5``: Keras' (its
    ``get_file``'s ``file_hash``) of a Keras ``.h5`` file, which is downloaded into Keras' own cache
    (``$KERAS_HOME/models``, default ``~/.keras/models``) and checked after download.

    What it is: ``license``, the published ImageNet-1k validation ``top1`` / ``top5`` accuracy in percent
    and ``accuracy_source`` (where they are published, at which input size and crop; or, with ``top1`` and
    ``top5`` None, why there are none: weights published for another use than classifying ImageNet-1k).

    What it outputs: ``num_classes``, the classes of the file's classifier where they differ from the
    record's default (face-identity classifiers of one model trained on two data sets); ``create_model``
    with the tag builds that many unless given ``num_classes``. None: the record's ``num_classes``.

    What input it expects: ``input_size`` (C, H, W), ``crop_pct``, ``interpolation``, ``mean`` / ``std``
    after scaling RGB to [0, 1] (``input_note`` says so in words). Conventions the source applies inside
    its model are folded into the first convolution on conversion (``transform_input``: the source peer's
    :attr:`Peer.folded_input`, torchvision's transform or Cadene's BGR 0-255 input), so the model takes
    exactly the input these fields describe; a source's 1001-class files lose their background row
    (:attr:`Peer.background_class`).
    """

    tag: str
    source: str
    license: str
    top1: float | None
    top5: float | None
    accuracy_source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    input_size: tuple[int, int, int] = (3, 299, 299)
    url: str | None = None
    hf_hub: tuple[str, str] | None = None
    sha256: str | None = None
    sha1: str | None = None
    md5: str | None = None
    transform_input: bool = False
    input_note: str = "RGB scaled to [0, 1], then normalized with mean / std"
    notes: str = ""
    num_classes: int | None = None

    def cfg(self) -> dict[str, Any]:
        """The entries of a model's ``default_cfg`` these weights set (timm's names where timm has one)."""
        where = {"url": self.url} if self.url else {"hf_hub_id": self.hf_hub[0], "hf_hub_filename": self.hf_hub[1]}
        return {
            "tag": self.tag, "input_size": self.input_size, "mean": self.mean, "std": self.std,
            "interpolation": self.interpolation, "crop_pct": self.crop_pct, "license": self.license,
            "top1": self.top1, "top5": self.top5, **where,
        }

    @property
    def location(self) -> str:
        """The URL, or ``hf-hub:<repo id>/<file name>``."""
        return self.url if self.url else f"hf-hub:{self.hf_hub[0]}/{self.hf_hub[1]}"


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
        pretrained: the published checkpoints (:class:`Pretrained`), the default tag first.
        feature_taps: the stages whose outputs ``features_only`` returns (and ``feature_info`` lists), in
            forward order; empty (the default): the last stage at each reduction (2, 4, 8, 16, 32).
        embedding: the main head is a face embedding (:class:`~inception_zoo.layers.EmbeddingSpec`: a
            bias-free projection, BatchNorm1d, L2 normalization for ``pre_logits``, the classifier on the
            un-normalized embedding); None (the default): a linear classifier on the pooled features.
        output_strides: the ``output_stride`` values the model can be built with (32: as published; 16 and
            8: dilated for dense prediction, see :func:`~inception_zoo.layers.dense_layout`). ``(32,)``
            where dense prediction means nothing (the CIFAR layouts' 32×32 input, the FID network's fixed
            taps).
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
    pretrained: tuple[Pretrained, ...] = ()
    aliases: tuple[str, ...] = ()
    feature_taps: tuple[str, ...] = ()
    embedding: EmbeddingSpec | None = None
    output_strides: tuple[int, ...] = (32, 16, 8)
    doc: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        """Checks what a typo in a record would otherwise turn into an error far from it.

        Raises:
            TypeError / ValueError: naming the field and what it must be.
        """
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"ModelRecord.name must be a Python identifier such as 'my_inception' (a '.' "
                             f"separates a pretrained tag), got {self.name!r}")
        if not isinstance(self.aliases, tuple) or not all(isinstance(a, str) and a.isidentifier() for a in self.aliases):
            raise TypeError(f"{self.name}: aliases must be a tuple of identifiers, got {self.aliases!r}")
        for field_name in ("params", "params_aux"):
            value = getattr(self, field_name)
            if not (value is None and field_name == "params_aux") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise TypeError(f"{self.name}: {field_name} must be the exact parameter count (an int > 0), "
                                f"got {value!r}")
        for field_name in ("input_size", "min_input_size"):
            value = getattr(self, field_name)
            if not (isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, int) and v > 0 for v in value)):
                raise ValueError(f"{self.name}: {field_name} must be (C, H, W) positive ints, got {value!r}")
        for field_name in ("mean", "std"):
            if len(getattr(self, field_name)) != self.input_size[0]:
                raise ValueError(f"{self.name}: {field_name} needs one value per input channel "
                                 f"({self.input_size[0]}), got {getattr(self, field_name)!r}")
        names = [stage for stage, _ in self.layout]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"{self.name}: the layout needs at least one stage and unique stage names, got {names}")
        for aux in self.aux_heads:
            if aux.tap not in names:
                raise ValueError(f"{self.name}: auxiliary head taps {aux.tap!r}, which is not a stage of the "
                                 f"layout ({', '.join(names)})")
        if self.feature_taps and (
            not set(self.feature_taps) <= set(names)
            or list(self.feature_taps) != sorted(self.feature_taps, key=names.index)
        ):
            raise ValueError(f"{self.name}: feature_taps must be stages of the layout in forward order "
                             f"({', '.join(names)}), got {self.feature_taps!r}")
        if bool(self.aux_heads) != (self.params_aux is not None):
            raise ValueError(f"{self.name}: params_aux is the count with the auxiliary heads; give it exactly "
                             "when the record has aux_heads")
        tags = [p.tag for p in self.pretrained]
        if len(set(tags)) != len(tags) or not all(t.replace("_", "").isalnum() for t in tags):
            raise ValueError(f"{self.name}: pretrained tags must be unique words such as 'tf_in1k', got {tags}")
        for row in self.pretrained:
            n = row.num_classes
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise ValueError(f"{self.name}.{row.tag}: num_classes must be None (the record's) or the int > 0 "
                                 f"of the checkpoint's classifier, got {n!r}")
        if not (isinstance(self.output_strides, tuple) and 32 in self.output_strides
                and set(self.output_strides) <= {8, 16, 32}):
            raise ValueError(f"{self.name}: output_strides must be a tuple of 32, 16 and 8 with 32 in it, got "
                             f"{self.output_strides!r}")
        if self.embedding is not None and not isinstance(self.embedding, EmbeddingSpec):
            raise TypeError(f"{self.name}: embedding must be an EmbeddingSpec or None, got {self.embedding!r}")

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
