"""From features to the FID: statistics, the Fréchet distance with pytorch-fid's numerics, pytorch-fid's
``.npz`` statistics files, and :func:`fid` on two image sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .features import activations, check_device, fid_model, files_of, is_statistics_file

__all__ = ["check_image_sets", "fid", "frechet_distance", "load_statistics", "save_statistics", "statistics"]


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (dims,) and the covariance (dims, dims) of ``features`` (N, dims), float64, as pytorch-fid
    computes them (``np.mean``, ``np.cov(rowvar=False)``: the unbiased N - 1 estimate).

    Raises:
        ValueError: fewer than 2 rows (the covariance is undefined) or not a 2-d array.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, dims), got shape {features.shape}")
    if len(features) < 2:
        raise ValueError(f"the FID needs at least 2 images (the covariance of {len(features)} is undefined)")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """The Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))``, with pytorch-fid's numerics:
    ``scipy.linalg.sqrtm`` of the product; where that is not finite (a near-singular product), of
    ``(sigma1 + eps I)(sigma2 + eps I)``; an imaginary part (rounding) dropped where the diagonal's is
    within 1e-3 of 0.

    Raises:
        ValueError: means or covariances of different dims, a covariance that is not (dims, dims), or an
            imaginary part too large to be rounding.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"the means have different dims: {mu1.shape} and {mu2.shape} (features of different taps?)")
    if sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"the covariances must both be ({len(mu1)}, {len(mu1)}), got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))  # the array alone (disp=False, deprecated, adds an error estimate)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"the square root of the covariance product has an imaginary part of "
                             f"{np.abs(covmean.imag).max():.3g}: not rounding; are the statistics valid?")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> Path:
    """Write ``mu`` and ``sigma`` to ``path`` in pytorch-fid's ``.npz`` format (keys ``mu``, ``sigma``;
    ``np.savez_compressed``), which pytorch-fid reads as its own. Returns the path.

    Raises:
        ValueError: ``path`` does not end in ``.npz``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"statistics are written as .npz; {str(path)!r} must end in .npz")
    np.savez_compressed(path, mu=mu, sigma=sigma)
    return path


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``sigma`` from a ``.npz`` file written by :func:`save_statistics` or pytorch-fid, float64.

    Raises:
        ValueError: not a readable ``.npz``, ``mu`` or ``sigma`` missing, or shapes that do not fit.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError:  # numpy's "pickled (object) data": not arrays of numbers
        raise ValueError(f"{path}: not a readable .npz statistics file (it holds pickled objects, or is not an "
                         ".npz archive at all)") from None
    except Exception as e:  # noqa: BLE001 - OSError, BadZipFile, EOFError ...
        raise ValueError(f"{path}: not a readable .npz statistics file ({type(e).__name__}: {e})") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: no {' or '.join(missing)} in it (keys: {', '.join(arrays) or 'none'}); "
                         "FID statistics files hold mu and sigma")
    for key in ("mu", "sigma"):
        if not (np.issubdtype(arrays[key].dtype, np.floating) or np.issubdtype(arrays[key].dtype, np.integer)):
            raise ValueError(f"{path}: {key} holds {arrays[key].dtype} values, not real numbers")
        if not np.isfinite(arrays[key]).all():
            raise ValueError(f"{path}: {key} holds NaN or infinite values")
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit (dims,) and (dims, dims)")
    return mu, sigma


def check_image_sets(*sets) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The input checks of :func:`fid`, before any work: each set a ``.npz`` (loaded here: the returned
    {position: (mu, sigma)}) or images; a folder or file list of fewer than 2 images is refused.

    Raises:
        ValueError: as :func:`load_statistics`; a missing path; fewer than 2 images.
    """
    loaded = {}
    for i, images in enumerate(sets):
        if is_statistics_file(images):
            loaded[i] = load_statistics(images)
            continue
        files = files_of(images)
        if files is not None and len(files) < 2:
            raise ValueError(f"{images}: the FID needs at least 2 images (the covariance of {len(files)} is undefined)")
    return loaded


def fid(path1, path2, *, dims: int = 2048, save_stats: str | os.PathLike | None = None,
        model: torch.nn.Module | None = None, **kwargs) -> float:
    """The FID between two image sets, each a folder (or anything :func:`activations` takes) or a ``.npz``
    statistics file. ``kwargs`` go to :func:`activations` (batch_size, device, num_workers, resize,
    precision, progress); ``model``: a :class:`FIDModel` (default: :func:`fid_model` for ``dims``);
    ``save_stats``: also write the first set's statistics there (once both sets are done).

    Raises:
        ValueError: as :func:`activations`, :func:`statistics`, :func:`load_statistics` and
            :func:`frechet_distance` (a ``.npz`` of other dims than the other set's included); every input
            problem that can be seen before computing features is raised before.
    """
    if save_stats is not None and Path(save_stats).suffix.lower() != ".npz":
        raise ValueError(f"statistics are written as .npz; {str(save_stats)!r} must end in .npz")
    device = check_device(kwargs.pop("device", None))
    loaded = check_image_sets(path1, path2)
    dims = model.dims if model is not None else dims
    for i, (mu, _) in loaded.items():
        if len(mu) != dims and len(loaded) == 1:
            raise ValueError(f"{(path1, path2)[i]} holds statistics of {len(mu)}-dim features, the other set's are "
                             f"computed with dims={dims}: use the same dims for both")
    if len(loaded) < 2 and model is None:
        model = fid_model(dims, device=device)
    s1 = loaded[0] if 0 in loaded else statistics(activations(path1, model, device=device, **kwargs))
    s2 = loaded[1] if 1 in loaded else statistics(activations(path2, model, device=device, **kwargs))
    if save_stats is not None:
        save_statistics(save_stats, *s1)
    return frechet_distance(*s1, *s2)
