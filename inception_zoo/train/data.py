"""The data of ``inception-zoo train``: scikit-learn's digits in memory, or an ImageFolder tree read through
timm's transforms, and the per-rank batch order that makes a resumed run see the same batches."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..images import IMAGE_SUFFIXES

__all__ = ["TrainError", "digits_split", "DIGITS_SIZE"]

# The side, in pixels, of the digits when no data directory is given: the scans' own 8×8 (upscaling adds no
# information, and 8×8 costs a sixteenth of 32×32: about 35 s for the default run on a 2-core CPU, fp32),
# or the model's minimum input size where that is larger (see _digits_size).
DIGITS_SIZE = 8


class TrainError(Exception):
    """A problem with the command line or the data, reported as one line before training starts."""


def digits_split(
    seed: int = 0, size: int = 32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits (1,797 real 8×8 scans, 10 classes) with a fixed stratified 80/20
    train/validation split.

    Args:
        seed: the split's random state (0: the split every run uses).
        size: the side the 8×8 scans are resized to (bilinear), in pixels; 8 keeps them as they are.

    Returns:
        ``(x_train, y_train, x_val, y_val)``: float32 images (N, 1, size, size) in [0, 1] and int64 labels
        (N,) in 0-9; 1,437 training and 360 validation images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_val = train_test_split(
        list(range(len(labels))), test_size=0.2, random_state=seed, stratify=digits.target
    )
    return images[idx_train], labels[idx_train], images[idx_val], labels[idx_val]


class _TensorData:
    """In-memory images (N, C, H, W) and labels (N,), normalized once by a scalar mean and std.
    ``input_cfg``: that preprocessing as ``default_cfg`` entries (input size, per-channel mean and std), for
    the trained model's checkpoint to carry."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> None:
        self.x, self.y, self.mean, self.std = (x - mean) / std, y, mean, std
        self.skipped = 0
        chans = x.shape[1]
        self.input_cfg = {"input_size": tuple(x.shape[1:]), "mean": (mean,) * chans, "std": (std,) * chans,
                          "crop_pct": 1.0}

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) and labels (B,) at ``indices``."""
        return self.x[indices], self.y[indices]


class _FolderData:
    """An ImageFolder split read through timm's transforms; unreadable images found while training are
    skipped with a warning and counted in ``skipped``.

    Raises:
        TrainError: no class folder, or a class folder without images (torchvision's message).
    """

    def __init__(self, root: Path, transform) -> None:
        from torchvision.datasets import ImageFolder

        try:
            self.folder = ImageFolder(str(root), transform=transform)
        except FileNotFoundError as e:
            raise TrainError(f"{root}: {str(e).splitlines()[0]}") from None
        self.skipped = 0
        self.classes = self.folder.classes

    def __len__(self) -> int:
        return len(self.folder)

    def _load(self, i: int):
        try:
            return self.folder[i]
        except Exception as e:  # noqa: BLE001 - any decoding failure of one file
            path = self.folder.samples[i][0]
            warnings.warn(f"skipping unreadable image {path}: {e}", RuntimeWarning, stacklevel=2)
            self.skipped += 1
            return None

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Images (B, 3, H, W) and labels (B,) at ``indices``, the unreadable ones left out (so B may be
        smaller than ``len(indices)``); None if none could be read."""
        items = [item for item in map(self._load, indices) if item is not None]
        if not items:
            return None
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _check_images(split: Path) -> None:
    """Open every image of a split once, so that an unreadable file stops us before training.

    Raises:
        TrainError: the first unreadable image, by path.
    """
    from PIL import Image

    for path in sorted(p for p in split.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # noqa: BLE001
            raise TrainError(f"unreadable image {path}: {e}") from None


def _digits_size(model: nn.Module) -> int:
    """The side the digits are trained at for ``model``: ``DIGITS_SIZE`` (8), or the model's minimum input
    size (``default_cfg["min_input_size"]``) where that is larger (15 for inception_v1_bn, 75 for
    inception_v3)."""
    min_size = model.default_cfg.get("min_input_size", (1, 1, 1))
    return max(DIGITS_SIZE, *min_size[1:])


def _digits_data(size: int) -> tuple[_TensorData, _TensorData, int]:
    """:func:`digits_split` at ``size``×``size``, both splits normalized by the training images' mean and
    std: (train, val, 10)."""
    x_tr, y_tr, x_va, y_va = digits_split(size=size)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    return _TensorData(x_tr, y_tr, mean, std), _TensorData(x_va, y_va, mean, std), 10


def _folder_data(root: Path, model: nn.Module) -> tuple[_FolderData, _FolderData, int]:
    """``root/train`` and ``root/val``, every image checked, with the transforms of ``model.default_cfg``:
    (train, val, number of classes).

    Raises:
        TrainError: a missing split, an unreadable image, or splits with different class folders.
    """
    import timm.data

    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise TrainError(f"{root} must hold train/ and val/ folders of class folders (no {root / split})")
        _check_images(root / split)
    config = timm.data.resolve_data_config({}, model=model)
    train = _FolderData(root / "train", timm.data.create_transform(**config, is_training=True))
    val = _FolderData(root / "val", timm.data.create_transform(**config))
    if train.classes != val.classes:
        raise TrainError(f"train/ and val/ under {root} have different class folders")
    return train, val, len(train.classes)


def _load_data(data: str | None, model: nn.Module):
    """The training and validation data and the number of classes: the digits when ``data`` is None (at
    :func:`_digits_size`), else the ImageFolder tree at ``data`` (transforms from ``model``'s
    ``default_cfg``).

    Raises:
        TrainError: ``data`` is not a directory, or see :func:`_folder_data`.
    """
    if data is None:
        return _digits_data(_digits_size(model))
    root = Path(data)
    if not root.is_dir():
        raise TrainError(f"data directory {root} does not exist")
    return _folder_data(root, model)


def _epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int, shuffle: bool
) -> list[list[int]]:
    """The batches (lists of sample indices) of one epoch for one rank: a permutation seeded by
    (seed, epoch), padded to a multiple of the world size and dealt out round-robin, so every rank sees as
    many batches and a resumed run sees the same ones. Training (``shuffle``) drops the last incomplete
    batch, as timm's loaders do."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    if world > 1:
        order += order[: (-len(order)) % world]
        order = order[rank::world]
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches
