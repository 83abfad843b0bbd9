"""Image files: which files in a folder are images, and reading one as RGB with an error that names it.
Shared by ``inception-zoo train`` (ImageFolder trees), ``quantize``'s calibration folder and the FID."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "image_files", "read_image"]

# The suffixes read as images (any case): pytorch-fid's set, which covers torchvision's ImageFolder's too
# (but for .tif).
IMAGE_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def image_files(folder: str | os.PathLike, *, what: str = "image folder") -> list[Path]:
    """Every image file under ``folder``, recursively (sub-folders too), by suffix (:data:`IMAGE_SUFFIXES`,
    any case), sorted by path.

    Raises:
        ValueError: ``folder`` does not exist or is not a folder, or holds no image (``what`` names it in
            the message: "calibration folder", ...).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{what} {str(root)!r} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"no images under {str(root)!r} (looked for {' '.join(IMAGE_SUFFIXES)}, in sub-folders too)")
    return files


def read_image(path: str | os.PathLike, mode: str = "RGB"):
    """The image at ``path`` fully decoded as a PIL image in ``mode`` (``"RGB"``: grey replicated, alpha
    dropped, 16-bit values clipped to 8 bits, as PIL's ``convert`` does, and as pytorch-fid reads images).

    Raises:
        ValueError: the file cannot be read or decoded (missing, not an image, truncated), naming the path.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert(mode)  # decodes the whole file: a truncated one fails here, not later
    except Exception as e:  # noqa: BLE001 - OSError, UnidentifiedImageError, DecompressionBombError, ...
        raise ValueError(f"cannot read image {path}: {e}") from None
