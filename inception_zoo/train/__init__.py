"""``inception-zoo train``: train any registered model with the Inception papers' losses.

* ``inception-zoo train`` with no data directory trains ``inception_v1_cifar`` on scikit-learn's bundled
  handwritten digits (1,797 real 8×8 scans, one channel, kept at 8×8; upscaled to the minimum input size
  of a ``--model`` that needs more) with a fixed train/validation split: a real data set that needs no
  download (3 epochs: about 35 s on a 2-core CPU, 98% validation top-1).
* ``inception-zoo train DIR --model NAME`` trains on an ImageFolder tree (``DIR/train/<class>/*.jpg`` and
  ``DIR/val/<class>/*.jpg``), with timm's transforms built from the model's ``default_cfg``.
* ``torchrun --nproc_per_node=2 -m inception_zoo.train ...`` trains data-parallel with
  DistributedDataParallel (gloo on CPU, nccl on GPU).

The loss is :class:`~inception_zoo.InceptionLoss` (label smoothing, weighted auxiliary heads);
``--recipe paper`` applies the paper's optimizer and schedule (the model record's ``recipe``).
Mixed precision (bf16 autocast) is on where the hardware computes in bf16, off elsewhere (``--amp``: always
on, ``--no-amp``: always off); the run's first line says which and why. Every epoch appends a line to
``OUT/metrics.jsonl``; ``OUT/last.safetensors`` (weights) and ``OUT/last_state.pt`` (epoch, step,
optimizer, scheduler, RNG; loadable with ``torch.load(weights_only=True)``) are written atomically
(temporary file, then rename) every epoch and at ``--max-steps``; ``--resume OUT`` continues exactly
where they left off.
"""

from .cli import build_parser, main
from .data import TrainError, digits_split
from .loop import evaluate, train
from .run import DEFAULT_RECIPE

__all__ = ["main", "build_parser", "digits_split", "train", "evaluate", "TrainError", "DEFAULT_RECIPE"]
