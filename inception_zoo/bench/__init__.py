"""Comparison benchmark: our models and their deploy backends against the peers' (torchvision, timm,
pytorchcv), eager, in the same runtimes and compiled.

``inception-zoo bench`` (or ``python benchmarks/compare.py``) measures, for every model with a peer, in
one process, the same architecture with the same weights on the same machine, as these variants:

* *ours* (eager) and *deploy*: ``optimize_for_inference(model, backend)`` with backend ``torch`` and, as
  ``--peers`` selects, ``onnxruntime`` and ``openvino`` (ours exported to ONNX);
* the *peer* (the record's first: torchvision, timm or pytorchcv) eager, and as runtime peers: its
  exported ONNX in ONNX Runtime (CPUExecutionProvider, ORT_ENABLE_ALL) and in OpenVINO (CPU, float32),
  both at torch's thread count, and ``torch.compile`` of it (inductor, freezing, static shapes). By default
  every installed runtime and compile; ``--peers`` chooses (``none``: the eager rows only). The runtimes
  compute in float32, so they run in the fp32 run only;
* ``--dtype int8`` (CPU): ours quantized in ONNX Runtime (``inception_zoo.deploy.quantize``, calibrated on
  random images: for timing only), timed beside our fp32 paths, against the fastest of them.

Figures, per variant:

* eval latency at batch 1 (ms per forward) and eval throughput at batch N (images/s),
* train-step time at batch N (forward, backward, SGD step; ours and the eager peer only),
* peak memory of an eval forward at batch N (ours, deploy and the eager peer; CPU: resident-set growth,
  measured in a fresh child process per model so one measurement does not hide another; CUDA:
  ``max_memory_allocated``),
* the maximum deviation of its batch-N logits from our eager fp32 logits, relative to their largest
  magnitude (computed once, not timed), and its setup time (s: conversion plus the first forwards, where
  torch.compile compiles).

After warm-up, the variants are measured in turn, with the order rotated every repeat so that drift of the
machine (turbo, other load) falls on all of them alike, and each compared pair (ours and the eager peer,
ours and the peer in the same runtime) back to back, each side first in every other repeat; one sample is as many forwards as fill about half
a second (a quarter at batch 1), and each figure is the median over the repeats. Deploy mode's
convolutions are also timed alone, in the same repeats, which gives the *ceiling* of deploy/peer: what it
would be if nothing but the convolutions took time. Ratios are the other's time / our time (> 1: ours
faster): ours and deploy against the eager peer, our runtime rows against the peer in the same runtime,
int8 against our fastest fp32 path. Each model's achieved rate (2 × MACs × images/s) is reported as a
fraction of the machine's matrix-multiply reference at the row's precision: the best ``torch.mm`` rate
over several sizes, fp32 always and bf16 / fp16 where the device runs them natively, taken at the start
and at the end; a model above its reference is flagged as a measurement problem, never shown over 100%.
"""

from .cli import build_parser, main, table
from .measure import run
from .timing import matmul_gflops

__all__ = ["build_parser", "main", "matmul_gflops", "run", "table"]
