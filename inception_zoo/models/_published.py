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

__all__ = ["timm_hub", "pytorchcv"]


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
