"""The FID Inception's features: images (folders, files, tensors) read and resized as pytorch-fid or
torch-fidelity do, through ``inception_v3_fid`` up to one tap, pooled."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DIMS", "PRECISIONS", "RESIZES", "FIDModel", "activations", "check_device", "fid_model", "files_of",
           "is_statistics_file", "preprocess"]

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
    _check_tensor(images)
    if images.is_floating_point() and images.numel():
        low, high = float(images.min()), float(images.max())
        if low < -0.01 or high > 1.01:
            warnings.warn(f"float images are taken in [0, 1] (pytorch-fid's convention); these span "
                          f"[{low:.3g}, {high:.3g}]: scale them first (x / 255 for 0-255, (x + 1) / 2 for "
                          "[-1, 1]), or pass uint8", UserWarning, stacklevel=2)
    x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if resize == "pytorch-fid":
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()  # torchvision's ToTensor
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1
    x = x.float() if x.dtype == torch.uint8 else x.float() * 255
    return (_resize_tf1(x, SIZE) - 128) / 128


def _check_tensor(images) -> None:
    """Raises ValueError unless ``images`` is a (B, 3 or 1, H, W) uint8 or floating-point tensor."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) or (B, 1, H, W) tensor, got {got}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1], got {images.dtype}")


def check_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch.device (None: CUDA if available, else the CPU).

    Raises:
        ValueError: not a device name, or a CUDA device on a machine without one.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu, cuda, cuda:1, ..., got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: no CUDA device is available here")
    return device


def is_statistics_file(path) -> bool:
    """``path`` names a ``.npz`` statistics file (any case), not a folder."""
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() == ".npz" and not Path(path).is_dir()


def _decode(path: Path) -> tuple[torch.Tensor, str]:
    """An image file decoded as an RGB uint8 (3, H, W) tensor, and "" ; or an empty tensor and the error
    (returned, not raised, so that the caller raises the first one in file order, as one line). Resizing is
    left to the caller, on the batch, as pytorch-fid does it."""
    from ..images import read_image

    try:
        image = read_image(path)
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
        chunks = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]

        def read():
            # Threads decode (PIL releases the GIL), the next batch while this one runs through the network;
            # threads, not processes: forking a process that holds thread pools (torch's, a runtime's) is
            # unsafe, and worker processes would resize in one thread, which can differ in the last bit.
            with ThreadPoolExecutor(max_workers=max(num_workers, 1)) as pool:
                ahead = [pool.submit(_decode, f) for f in chunks[0]] if num_workers else None
                for k, chunk in enumerate(chunks):
                    if num_workers:
                        items = [f.result() for f in ahead]
                        if k + 1 < len(chunks):
                            ahead = [pool.submit(_decode, f) for f in chunks[k + 1]]
                    else:
                        items = [_decode(f) for f in chunk]
                    for _, error in items:
                        if error:
                            raise ValueError(error)
                    yield _preprocessed([x for x, _ in items], resize)

        return read(), len(files)
    if isinstance(images, torch.Tensor):
        _check_tensor(images)  # before any work
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
        num_workers: threads decoding image files, ahead of the network (default: min(8, CPUs); 0: none).
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
    device = check_device(device)
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


