"""The Fréchet Inception Distance (Heusel et al., arXiv 1706.08500), as pytorch-fid and torch-fidelity
compute it, on ``inception_v3_fid``.

Three steps, each a function:

* :func:`activations`: images (a folder, files, uint8 or float tensors) -> (N, dims) float64 features of
  the FID Inception: pool3 (2048, the FID's) or the spatial mean of an earlier tap (64, 192, 768);
* :func:`statistics`: activations -> their mean (dims,) and covariance (dims, dims), float64;
* :func:`frechet_distance`: two (mean, covariance) pairs -> the FID,
  ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

:func:`fid` runs them on two folders (or ``.npz`` statistics files, pytorch-fid's format: ``mu`` and
``sigma``). What makes the result equal to the FID packages': the same network and weights (pytorch-fid's
port of TF's 2015-12-05 graph), the same input (images read with PIL as RGB, resized to 299×299 by the
package's own rule, scaled to [-1, 1] the package's way), float32 features, and the same statistics and
matrix square root (numpy / scipy, float64). ``resize="pytorch-fid"`` (the default) is torch's bilinear
resize of RGB / 255 with ``align_corners=False``, then ``2x - 1``; ``resize="torch-fidelity"`` is
TensorFlow 1's bilinear resize (source pixel ``i * in / out``, no half-pixel offset) of the 0-255 values,
then ``(x - 128) / 128``.
"""

from __future__ import annotations

from .distance import fid, frechet_distance, load_statistics, save_statistics, statistics
from .features import DIMS, PRECISIONS, RESIZES, FIDModel, activations, fid_model, preprocess

__all__ = ["DIMS", "PRECISIONS", "RESIZES", "FIDModel", "activations", "fid", "fid_model", "frechet_distance",
           "load_statistics", "preprocess", "save_statistics", "statistics"]
