"""The FID Inception's features: images (folders, files, tensors) read and resized as pytorch-fid or
torch-fidelity do, through ``inception_v3_fid`` up to one tap, pooled."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DIMS", "PRECISIONS", "RESIZES", "FIDModel", "activations", "fid_model", "files_of", "preprocess"]

DIMS = (64, 192, 768, 2048)  # the taps: after MaxPool_3a, after MaxPool_5a, Mixed_6e, pool3 (pytorch-fid's blocks 0-3)
RESIZES = ("pytorch-fid", "torch-fidelity")
PRECISIONS = ("fp32", "bf16", "fp16")  # fp32: the FID's; the others under autocast, faster and not equal
SIZE = 299
MODEL = "inception_v3_fid"


# ------------------------------------------------------------------------------------------ input
def _resize_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1's ``resize_bilinear`` (``align_corners=False``, no half-pixel centres): output pixel i
    samples source position ``i * in / out`` (float32), between its floor and the next pixel (clamped at
    the border), along the width first, then the height. (B, C, H, W) float32 -> (B, C, size, size)."""
    def axis(n_in: int):
        pos = torch.arange(size, dtype=torch.float32) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp(max=n_in - 1), pos - lo.float()

    lo, hi, w = axis(x.shape[-1])
    a, b = x[..., lo], x[..., hi]
    x = a + (b - a) * w
    lo, hi, w = axis(x.shape[-2])
    a, b = x[..., lo, :], x[..., hi, :]
    return a + (b - a) * w[:, None]


def preprocess(images: torch.Tensor, resize: str = "pytorch-fid") -> torch.Tensor:
    """Images as the FID Inception takes them.

    Args:
        images: (B, 3, H, W) or (B, 1, H, W) (grey, replicated to RGB), uint8 in [0, 255] or float in
            [0, 1] (pytorch-fid's convention; torch-fidelity's rule scales it by 255 first).
        resize: ``"pytorch-fid"``: ``F.interpolate(bilinear, align_corners=False)`` of RGB / 255 to
            299×299, then ``2x - 1``; ``"torch-fidelity"``: TensorFlow 1's bilinear resize of the 0-255
            values, then ``(x - 128) / 128``.

    Returns:
        (B, 3, 299, 299) float32 in about [-1, 1].

    Raises:
        ValueError: another shape or dtype, an unknown ``resize``.
    """
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) or (B, 1, H, W) tensor, got {got}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1], got {images.dtype}")
    x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if resize == "pytorch-fid":
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()  # torchvision's ToTensor
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1
    x = x.float() if x.dtype == torch.uint8 else x.float() * 255
    return (_resize_tf1(x, SIZE) - 128) / 128


class _Files(torch.utils.data.Dataset):
    """Image files decoded as RGB uint8 (3, H, W) tensors, one by one. A file's error is returned, not
    raised, so that the caller raises it as one line (DataLoader would wrap it in a worker traceback).
    Resizing is left to the main process, on the batch (as pytorch-fid does it: a resize computed in a
    one-thread worker can differ from the main process's in the last bit)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        from ..images import read_image

        try:
            image = read_image(self.files[i])
        except ValueError as e:
            return torch.zeros(0, dtype=torch.uint8), str(e)
        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1), ""


def _preprocessed(images: list[torch.Tensor], resize: str) -> torch.Tensor:
    """Images of any sizes preprocessed into one batch: those of one size resized together."""
    if all(x.shape == images[0].shape for x in images):
        return preprocess(torch.stack(images), resize)
    return torch.cat([preprocess(x[None], resize) for x in images])


def files_of(images) -> list[Path] | None:
    """The image files ``images`` names (a folder, recursively; a file; a list of files), or None."""
    from ..images import image_files

    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            return image_files(path)
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is neither a folder nor a file")
        return [path]
    if isinstance(images, (list, tuple)) and images and all(isinstance(p, (str, os.PathLike)) for p in images):
        missing = [str(p) for p in images if not Path(p).is_file()]
        if missing:
            raise ValueError(f"no such image file: {missing[0]}")
        return [Path(p) for p in images]
    return None


def _batches(images, batch_size: int, resize: str, num_workers: int) -> tuple[Iterable[torch.Tensor], int | None]:
    """Preprocessed batches of ``images`` and their number of images (None where unknown: an iterable)."""
    files = files_of(images)
    if files is not None:
        loader = torch.utils.data.DataLoader(_Files(files), batch_size=batch_size, num_workers=num_workers,
                                             collate_fn=list)

        def read():
            for items in loader:
                for _, error in items:
                    if error:
                        raise ValueError(error)
                yield _preprocessed([x for x, _ in items], resize)

        return read(), len(files)
    if isinstance(images, torch.Tensor):
        preprocess(images[:0], resize)  # the shape and dtype checks, before any work
        return (preprocess(images[i:i + batch_size], resize) for i in range(0, len(images), batch_size)), len(images)
    if isinstance(images, Iterable) and not isinstance(images, (str, bytes)):
        return (preprocess(b, resize) for b in images), None
    raise ValueError("images must be a folder, an image file, a list of image files, a (B, 3, H, W) tensor or "
                     f"an iterable of such tensors; got {type(images).__name__}")


# ------------------------------------------------------------------------------------------ the network
class FIDModel(nn.Module):
    """The FID Inception up to one tap, pooled: (B, 3, 299, 299) preprocessed images (see :func:`preprocess`)
    -> (B, dims) float32, the spatial mean of the tap's map (pool3 for 2048).

    Args:
        net: ``inception_v3_fid`` with its weights, or its ``optimize_for_inference(net, "torch")`` copy
            (the same stages, BatchNorm folded: the same features within 1e-5 relative).
        dims: 64, 192, 768 or 2048.
    """

    def __init__(self, net: nn.Module, dims: int = 2048) -> None:
        super().__init__()
        if dims not in DIMS:
            raise ValueError(f"dims must be one of {', '.join(map(str, DIMS))}, got {dims!r}")
        names = [name for name, _ in net.features.named_children()]
        tap = dict(zip(DIMS, ("MaxPool_3a_3x3", "MaxPool_5a_3x3", "Mixed_6e", "Mixed_7c")))[dims]
        self.stages = nn.Sequential(*list(net.features.children())[: names.index(tap) + 1])
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return F.adaptive_avg_pool2d(self.stages(x), 1).flatten(1)


def fid_model(dims: int = 2048, *, device: str | torch.device = "cpu", deploy: bool = True,
              weights: str = "fid") -> FIDModel:
    """The FID Inception with the published weights (``inception_v3_fid.<weights>``, downloaded once
    through torch.hub), up to the ``dims`` tap, in eval mode on ``device``; ``deploy``: in
    ``optimize_for_inference``'s torch form (BatchNorm folded, fused convolutions; features within 1e-5
    relative of the eager network's, measured faster).

    Raises:
        ValueError: ``dims`` not one of :data:`DIMS`.
        CheckpointNotFoundError / CheckpointError: the weights are not cached and cannot be downloaded.
    """
    from ..deploy import optimize_for_inference
    from ..factory import create_model

    if dims not in DIMS:
        raise ValueError(f"dims must be one of {', '.join(map(str, DIMS))}, got {dims!r}")
    net = create_model(f"{MODEL}.{weights}", pretrained=True).eval()
    if deploy:
        net = optimize_for_inference(net, "torch")
    return FIDModel(net, dims).to(device).eval()


# ------------------------------------------------------------------------------------------ the FID
def activations(images, model: nn.Module | None = None, *, dims: int = 2048, batch_size: int = 50,
                device: str | torch.device | None = None, num_workers: int | None = None,
                resize: str = "pytorch-fid", precision: str = "fp32", progress: bool = True) -> np.ndarray:
    """The FID Inception's features of ``images``.

    Args:
        images: a folder (its image files, recursively; :data:`~inception_zoo.images.IMAGE_SUFFIXES`), an
            image file, a list of image files (read with PIL as RGB: grey replicated, alpha dropped, 16-bit
            clipped, as pytorch-fid reads them; any sizes), a (N, 3, H, W) / (N, 1, H, W) tensor (uint8 in
            [0, 255] or float in [0, 1]), or an iterable of such tensors (e.g. a generator's batches).
        model: a :class:`FIDModel` (default: :func:`fid_model` for ``dims`` on ``device``).
        dims: the tap (64, 192, 768, 2048); ignored with ``model``.
        batch_size: images per forward.
        device: where the network runs (default: CUDA if available, else the CPU).
        num_workers: processes reading image files (default: min(8, CPUs), as pytorch-fid).
        resize: ``"pytorch-fid"`` or ``"torch-fidelity"`` (see :func:`preprocess`).
        precision: ``"fp32"`` (the FID's, the default) or ``"bf16"`` / ``"fp16"`` under autocast: faster where
            the device has them, but the features differ (about 1e-2 relative): not comparable with
            published FIDs.
        progress: a tqdm bar on stderr.

    Returns:
        (N, dims) float64.

    Raises:
        ValueError: no image, an unreadable image (named), a tensor of another shape or dtype, a bad option.
    """
    from tqdm import tqdm

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if num_workers is None:
        num_workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    batches, total = _batches(images, batch_size, resize, num_workers)
    if model is None:
        model = fid_model(dims, device=device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    out = []
    with tqdm(total=total, unit="img", desc="FID features", disable=not progress) as bar, torch.inference_mode(), \
            torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        try:
            for batch in batches:
                out.append(model(batch.to(device)).float().cpu().numpy().astype(np.float64))
                bar.update(len(batch))
        except BaseException:
            bar.leave = False  # an error ends the bar: its message alone is left on the terminal
            raise
    if not out:
        raise ValueError("no images to compute FID features of")
    return np.concatenate(out)


