"""``inception-zoo predict``: the top-k ImageNet classes of images, with a model's published weights."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

__all__ = ["PredictError", "predict"]


class PredictError(Exception):
    """A problem with the images, the model name or ``top``, or weights that cannot be had; one line."""


def predict(images: Sequence[str | os.PathLike], model: str = "inception_v3.tv_in1k", *, top: int = 5
            ) -> list[tuple[str, list[tuple[str, float]]]]:
    """Classify image files with ``model``'s published ImageNet-1k weights (``"name.tag"``, or a name for
    its default tag), each preprocessed with timm's transform built from the weights' ``default_cfg``
    (resize, centre crop, mean / std). Class names come from timm's ImageNet metadata (no download).

    Returns:
        ``[(image, [(class name, probability), ...]), ...]``: the ``top`` most probable classes of each
        image, most probable first; probabilities are softmax outputs in [0, 1].

    Raises:
        PredictError: an unreadable image, ``top`` outside 1..1000, an unknown model or tag, a model
            without published weights, or weights that are not cached and cannot be downloaded.
    """
    import timm.data
    from PIL import Image, UnidentifiedImageError

    from .factory import create_model
    from .registry import error_message, get_pretrained
    from .weights import CheckpointError

    if not isinstance(top, int) or not 1 <= top <= 1000:
        raise PredictError(f"--top must be an integer in 1..1000, got {top!r}")
    try:
        record, row = get_pretrained(model)
        classes = record.num_classes if row.num_classes is None else row.num_classes
        if classes != 1000:  # before any download
            raise PredictError(f"{model}'s weights have {classes} classes, not ImageNet-1k's 1000")
        net = create_model(model, pretrained=True).eval()
    except (KeyError, ValueError, CheckpointError) as e:
        raise PredictError(error_message(e)) from None
    if net.num_classes != 1000:
        raise PredictError(f"{model}'s weights have {net.num_classes} classes, not ImageNet-1k's 1000")
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=net))
    info = timm.data.ImageNetInfo()
    results = []
    for image in images:
        try:
            with Image.open(image) as im:
                x = transform(im.convert("RGB")).unsqueeze(0)
        except (OSError, UnidentifiedImageError) as e:
            raise PredictError(f"cannot read image {image}: {e}") from None
        with torch.inference_mode():
            probabilities = net(x).softmax(dim=1)[0]
        values, indices = probabilities.topk(top)
        results.append((str(image), [(info.index_to_description(int(i)), float(v)) for v, i in zip(values, indices)]))
    return results
