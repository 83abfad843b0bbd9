"""Rows of published weights in the conventions their publishers share, so that each record lists only
what differs: the file, its hash and its accuracy."""

from __future__ import annotations

from ..records import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    Pretrained,
)

__all__ = ["timm_hub", "pytorchcv", "cadene", "keras_applications"]

CADENE_HOST = "http://data.lip6.fr/cadene/pretrainedmodels"


def timm_hub(model: str, tag: str, top1: float, top5: float, *, crop_pct: float, notes: str,
             imagenet_stats: bool = False) -> Pretrained:
    """A timm checkpoint on the Hugging Face hub (``timm/<model>.<tag>``, ``model.safetensors``), 299×299
    bicubic, Inception mean / std (or ImageNet's), accuracy from timm's results-imagenet.csv."""
    mean, std = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD) if imagenet_stats else (
        IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD)
    return Pretrained(
        tag, "timm", hf_hub=(f"timm/{model}.{tag}", "model.safetensors"), license="Apache-2.0 (timm)",
        top1=top1, top5=top5, accuracy_source=f"timm results-imagenet.csv, {model}.{tag} (299, crop {crop_pct:.3g})",
        mean=mean, std=std, interpolation="bicubic", crop_pct=crop_pct, notes=notes,
    )


def pytorchcv(name: str, release: str, sha1: str, top1_error: float, top5_error: float, *, size: int = 299,
              notes: str) -> Pretrained:
    """A pytorchcv checkpoint: ``<name>-<top-5 error x 100>-<sha1[:8]>.pth.zip`` on imgclsmob's GitHub
    releases, the sha1 of the ``.pth`` inside; ImageNet mean / std, bilinear resize to size / 0.875 and
    centre crop; the errors (in percent) as pytorchcv 0.0.74's README publishes them."""
    url = (f"https://github.com/osmr/imgclsmob/releases/download/{release}/"
           f"{name}-{round(top5_error * 100):04d}-{sha1[:8]}.pth.zip")
    resize = round(size / 0.875)
    return Pretrained(
        "cv_in1k", "pytorchcv", url=url, sha1=sha1, license="MIT (pytorchcv)",
        top1=round(100 - top1_error, 2), top5=round(100 - top5_error, 2),
        accuracy_source=f"pytorchcv 0.0.74 README (top-1 / top-5 error {top1_error:.2f} / {top5_error:.2f}; "
        f"{size}, resize {resize})",
        input_size=(3, size, size), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
        interpolation="bilinear", crop_pct=0.875, notes=notes,
    )


def cadene(url: str, readme_row: str, top1: float, top5: float, *, license: str, notes: str, size: int = 299,
           crop_pct: float = 0.875, mean: tuple[float, ...] = IMAGENET_INCEPTION_MEAN,
           std: tuple[float, ...] = IMAGENET_INCEPTION_STD, transform_input: bool = False,
           input_note: str | None = None) -> Pretrained:
    """The file Cadene's pretrainedmodels loads for ``pretrained="imagenet"`` (tag ``cadene_in1k``, key layout
    ``"cadene"``): its name's suffix is the sha256 prefix (torch.hub's convention; the torch versions
    pretrainedmodels was published for checked it on every download). Accuracy: the pretrainedmodels 0.7.4
    README's Acc@1 / Acc@5 row ``readme_row``, measured on centre crops of ``size`` after a bilinear resize of
    the short side to ``floor(size / crop_pct)`` (its TransformImage). ``transform_input``: the peer's input
    convention (Peer.input_convention) is folded; ``mean`` / ``std`` are then its ``folded_mean`` /
    ``folded_std``."""
    sha256 = url.rsplit("/", 1)[1].rsplit("-", 1)[1].split(".")[0]
    resize = int(size / crop_pct)
    return Pretrained(
        "cadene_in1k", "cadene", url=url, sha256=sha256, license=license, top1=top1, top5=top5,
        accuracy_source=f"pretrainedmodels 0.7.4 README, {readme_row} ({size}, resize {resize}, centre crop)",
        input_size=(3, size, size), mean=mean, std=std, interpolation="bilinear", crop_pct=crop_pct,
        transform_input=transform_input, notes=notes,
        **({"input_note": input_note} if input_note else {}),
    )


KERAS_HOST = "https://storage.googleapis.com/tensorflow/keras-applications"


def keras_applications(path: str, md5: str, top1: float, top5: float, *, notes: str) -> Pretrained:
    """The weights ``keras.applications`` downloads for ``weights="imagenet"`` (tag ``keras_in1k``, key layout
    ``"keras"``): a legacy Keras ``.h5`` under ``KERAS_HOST/<path>``, checked against the md5 Keras publishes
    (its ``get_file``'s ``file_hash``) and cached where Keras caches it. Keras' preprocessing ("tf" mode,
    x / 127.5 - 1: mean = std = 0.5), 299×299; accuracy from keras.io's applications table (single centre
    crop on the ILSVRC 2012 validation set, as keras-applications measured it)."""
    return Pretrained(
        "keras_in1k", "keras", url=f"{KERAS_HOST}/{path}", md5=md5,
        license="Apache-2.0 (Keras applications)", top1=top1, top5=top5,
        accuracy_source="keras.io/api/applications table (299, single centre crop)",
        mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bilinear", crop_pct=0.875,
        notes=notes,
    )
