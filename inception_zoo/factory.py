"""``create_model``: a registered model by name, optionally with a checkpoint loaded, or as a backbone."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence

from torch import nn

from .models import FeatureExtractor, InceptionNet
from .registry import get_pretrained, get_record

__all__ = ["create_model"]

_OPTIONS = [p for p in inspect.signature(InceptionNet).parameters if p != "record"]


def create_model(
    name: str,
    *,
    pretrained: bool | str | os.PathLike | Mapping | None = None,
    pretrained_source: str = "auto",
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **options,
) -> nn.Module:
    """Build a registered model (randomly initialized) by name or alias.

    Args:
        name: a name from :func:`~inception_zoo.list_models` or an alias (``googlenet``, ``inception_v2``),
            optionally with a pretrained tag (``"inception_v3.tv_in1k"``, see
            :func:`~inception_zoo.list_pretrained`); a tag alone sets ``default_cfg`` to its preprocessing.
        pretrained: ``True``: the tag's published weights (the model's default tag without one),
            downloaded once through torch.hub / huggingface_hub and cached converted (see
            :mod:`inception_zoo.weights.hub`); or a checkpoint to load (a path or a state dict): ours, or
            torchvision's, timm's or pytorchcv's for the same network (see
            :func:`~inception_zoo.load_pretrained`).
        pretrained_source: the checkpoint's layout, ``"auto"`` to detect it from the keys.
        features_only: return a :class:`~inception_zoo.models.FeatureExtractor` that outputs the
            feature maps at reductions 2, 4, 8, 16, 32 (``feature_info`` gives channels and reductions).
        out_indices: with ``features_only``, which of those maps (indices 0-4; None: all).
        **options: the options of :class:`~inception_zoo.InceptionNet`: ``num_classes`` (0: pooled
            features, or a face model's normalized embedding; None: the tag's classes where its row gives
            them (10575 for inception_resnet_v1_facenet.casia_webface), else the model's default, 1000 for
            ImageNet, 10 / 100 for the CIFAR layouts, 8631 for inception_resnet_v1_facenet),
            ``in_chans`` (3), ``aux_logits`` (False), ``drop_rate`` (None: the paper's), ``global_pool``
            ("avg"), ``output_stride`` (32; 16 or 8 dilate the last stages for dense prediction, with
            ``features_only`` too: ``feature_info.reduction()`` then stops at it).

    Returns:
        The model, in train mode, with ``default_cfg``.

    Raises:
        UnknownModelError (a KeyError): unknown name or tag; the message lists the closest ones.
        TypeError: a name that is not a string, or an option no model takes (named, with the accepted ones).
        ValueError: an option out of range (from the model), ``out_indices`` without ``features_only``, or
            ``pretrained=True`` for a model without published weights.
        CheckpointError (a ValueError): a checkpoint that cannot be loaded (see load_pretrained), or
            published weights that are neither cached nor downloadable (CheckpointNotFoundError).
    """
    tagged = isinstance(name, str) and "." in name
    record, row = get_pretrained(name) if tagged or pretrained is True else (get_record(name), None)
    unknown = [k for k in options if k not in _OPTIONS]
    if unknown:
        raise TypeError(
            f"create_model({name!r}) got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(sorted(_OPTIONS + ['pretrained', 'pretrained_source', 'features_only', 'out_indices']))}"
        )
    if not features_only and out_indices is not None:
        raise ValueError("out_indices selects feature maps; it needs features_only=True")
    if row is not None and row.num_classes is not None and options.get("num_classes") is None:
        options["num_classes"] = row.num_classes  # the tag's classifier (face identities of its data set)
    model = InceptionNet(record, **options)
    if pretrained is True:
        from .weights.hub import load_published

        load_published(model, record, row)
    elif pretrained is not None and pretrained is not False:
        from .weights import load_pretrained

        load_pretrained(model, pretrained, source=pretrained_source)
    elif row is not None:
        model.set_input_cfg(**row.cfg())
    if features_only:
        return FeatureExtractor(model, out_indices)
    return model
