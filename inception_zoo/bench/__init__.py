"""Comparison benchmark: our models, their deploy mode and the peers' (torchvision, timm, pytorchcv).

``inception-zoo bench`` (or ``python benchmarks/compare.py``) measures, for every model with a peer, in
one process, the same architecture with the same weights on the same machine:

* eval latency at batch 1 (ms per forward) and eval throughput at batch N (images/s),
* train-step time at batch N (forward, backward, SGD step; ours and peer, deploy mode being eval-only),
* peak memory of an eval forward at batch N (CPU: resident-set growth, measured in a fresh child process
  per model so one measurement does not hide another; CUDA: ``max_memory_allocated``).

After warm-up, the variants are measured in turn, ours / deploy / peer, with the order rotated every
repeat so that drift of the machine (turbo, other load) falls on all of them alike; one sample is as
many forwards as fill about half a second (a quarter at batch 1), and each figure is the median over the
repeats. Deploy mode's convolutions are also timed alone, in the same repeats, which gives the *ceiling*
of deploy/peer: what it would be if nothing but the convolutions took time. Ratios are peer time / our
time (> 1: ours faster). The machine's own fp32 matrix-multiply rate (``torch.mm``, 2048×2048, same
threads; the best reading, taken at the start and at the end) is measured too, and each model's
achieved rate (2 × MACs × images/s) is reported as a fraction of it.
"""

from .cli import build_parser, main, table
from .measure import run
from .timing import matmul_gflops

__all__ = ["run", "main", "build_parser", "matmul_gflops", "table"]
