"""``inception-zoo train``: train any registered model with the Inception papers' losses.

* ``inception-zoo train`` with no data directory trains ``inception_v1_cifar`` on scikit-learn's bundled
  handwritten digits (1,797 real 8×8 scans, upscaled to 32×32, one channel) with a fixed train/validation
  split: a real data set that needs no download.
* ``inception-zoo train DIR --model NAME`` trains on an ImageFolder tree (``DIR/train/<class>/*.jpg`` and
  ``DIR/val/<class>/*.jpg``), with timm's transforms built from the model's ``default_cfg``.
* ``torchrun --nproc_per_node=2 -m inception_zoo.train ...`` trains data-parallel with
  DistributedDataParallel (gloo on CPU, nccl on GPU).

The loss is :class:`~inception_zoo.InceptionLoss` (label smoothing, weighted auxiliary heads);
``--recipe paper`` applies the paper's optimizer and schedule. Every epoch appends a line to
``OUT/metrics.jsonl``; ``OUT/last.safetensors`` (weights) and ``OUT/last_state.pt`` (epoch, step,
optimizer, scheduler, RNG; loadable with ``torch.load(weights_only=True)``) are written atomically
(temporary file, then rename) every epoch and at ``--max-steps``; ``--resume OUT`` continues exactly
where they left off.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["main", "build_parser", "RECIPES", "digits_split"]


class TrainError(Exception):
    """A problem with the command line or the data, reported as one line before training starts."""


# ------------------------------------------------------------------------------------------------ recipes
@dataclass(frozen=True)
class Recipe:
    """Optimizer and schedule. ``decay_every`` epochs the learning rate is multiplied by ``decay``."""

    optimizer: str
    lr: float
    decay: float
    decay_every: int
    label_smoothing: float
    aux_weight: float
    clip_grad: float | None = None
    weight_decay: float = 0.0


# Inception v3 (arXiv 1512.00567, Section 8): RMSProp decay 0.9, eps 1.0, lr 0.045 decayed every two epochs
# by 0.94, gradient clipping at 2.0, label smoothing 0.1; auxiliary weight 0.4 (the TF-slim recipe).
V3_PAPER = Recipe("rmsprop", 0.045, 0.94, 2, 0.1, 0.4, clip_grad=2.0)
# GoogLeNet (arXiv 1409.4842, Section 6): SGD momentum 0.9, learning rate x0.96 every 8 epochs, auxiliary
# losses weighted 0.3 (the paper gives no base rate; 0.01 here).
V1_PAPER = Recipe("sgd", 0.01, 0.96, 8, 0.0, 0.3)
RECIPES: dict[str, Recipe] = {
    "inception_v1": V1_PAPER,
    "inception_v1_bn": V1_PAPER,
    "inception_v1_cifar": V1_PAPER,
    "inception_v1_cifar_naive": V1_PAPER,
    "bn_inception": V1_PAPER,
    "inception_v3": V3_PAPER,
    "inception_v4": V3_PAPER,  # arXiv 1602.07261, Section 4: RMSProp decay 0.9, eps 1.0, lr 0.045, x0.94 / 2 epochs
    "inception_resnet_v1": V3_PAPER,
    "inception_resnet_v2": V3_PAPER,
    "xception": Recipe("sgd", 0.045, 0.94, 2, 0.0, 0.0),  # arXiv 1610.02357, Section 4.3
    "xception_cifar": Recipe("sgd", 0.045, 0.94, 2, 0.0, 0.0),
}
# The default recipe: SGD with Nesterov momentum and a one-cycle (warm-up, cosine) learning rate.
DEFAULT = Recipe("sgd", 0.05, 1.0, 1, 0.0, 0.3, weight_decay=5e-4)


# --------------------------------------------------------------------------------------------------- data
def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits, upscaled to 32×32 (bilinear), in [0, 1], with a fixed stratified 80/20
    train/validation split: (x_train (N, 1, 32, 32), y_train, x_val, y_val)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_val = train_test_split(
        list(range(len(labels))), test_size=0.2, random_state=seed, stratify=digits.target
    )
    return images[idx_train], labels[idx_train], images[idx_val], labels[idx_val]


class _TensorData:
    """In-memory images and labels, normalized once."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> None:
        self.x, self.y = (x - mean) / std, y
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, indices: list[int]):
        return self.x[indices], self.y[indices]


class _FolderData:
    """An ImageFolder split read through timm's transforms; unreadable images found while training are
    skipped with a warning and counted."""

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

    def batch(self, indices: list[int]):
        items = [item for item in map(self._load, indices) if item is not None]
        if not items:
            return None
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _check_images(split: Path) -> None:
    """Open every image of a split once, so that an unreadable file stops us before training."""
    from PIL import Image

    for path in sorted(p for p in split.rglob("*") if p.is_file()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"):
            continue
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # noqa: BLE001
            raise TrainError(f"unreadable image {path}: {e}") from None


def _folder_data(root: Path, model: nn.Module):
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


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int, shuffle: bool):
    """The batches of one epoch for one rank: a permutation seeded by (seed, epoch), padded to a multiple
    of the world size and dealt out round-robin, so every rank sees as many batches and a resumed run
    sees the same ones. Training (``shuffle``) drops the last incomplete batch, as timm's loaders do."""
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


# ---------------------------------------------------------------------------------------------- training
def _optimizer(recipe: Recipe, params, lr: float):
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay)


def _scheduler(opt, recipe: Recipe, lr: float, paper: bool, steps_per_epoch: int, epochs: int):
    if paper:  # stepwise decay, advanced once per epoch
        return torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.decay_every, gamma=recipe.decay), "epoch"
    total = max(steps_per_epoch * epochs, 1)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15), "step"


def _topk(logits: torch.Tensor, y: torch.Tensor, k: int) -> int:
    k = min(k, logits.shape[1])
    return int((logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum())


def _atomic_save(writers: dict[Path, object]) -> None:
    """Write every file through its ``write(tmp_path)`` to a temporary name first, then rename them all
    into place: a crash while writing leaves the previous checkpoint whole (weights and state together)."""
    tmps = {path: path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}") for path in writers}
    try:
        for path, write in writers.items():
            write(tmps[path])
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                tmp.unlink()


def _rng_state() -> dict:
    import numpy as np

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[2] if random.getstate()[2] is not None else -1],
        "numpy": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
    }


def _set_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    py = list(state["python"])
    gauss = None if py[-1] == -1 else py[-1]
    random.setstate((3, tuple(int(v) for v in py[:-1]), gauss))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype("uint32"), state["numpy_pos"], 0, 0.0))


def _digest(model: nn.Module) -> str:
    """SHA-256 of the parameters (BatchNorm statistics excluded: each rank keeps its own last update)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist()
    import torch.distributed as dist

    dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _all_sum(values: list[float], d: _Dist) -> list[float]:
    if d.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def train(args: argparse.Namespace) -> dict:
    """Run a training as configured by the command line; returns the final metrics."""
    from tqdm import tqdm

    from .losses import InceptionLoss
    from .registry import UnknownModelError, create_model
    from .weights import load_pretrained, save_weights

    device = args.device
    d = _init_distributed(device)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    # ---- data and model (every problem reported before the first step)
    name = args.model or "inception_v1_cifar"
    in_chans = 1 if args.data is None else 3
    try:
        probe = create_model(name, in_chans=in_chans, num_classes=1)
    except UnknownModelError as e:
        raise TrainError(str(e)) from None
    if args.data is None:
        x_tr, y_tr, x_va, y_va = digits_split()
        mean, std = float(x_tr.mean()), float(x_tr.std())
        train_data, val_data = _TensorData(x_tr, y_tr, mean, std), _TensorData(x_va, y_va, mean, std)
        num_classes = 10
    else:
        root = Path(args.data)
        if not root.is_dir():
            raise TrainError(f"data directory {root} does not exist")
        train_data, val_data, num_classes = _folder_data(root, probe)
    recipe = RECIPES.get(name, DEFAULT) if args.recipe == "paper" else DEFAULT
    aux = _supports_aux(name) and not args.no_aux
    smoothing = args.label_smoothing if args.label_smoothing is not None else recipe.label_smoothing
    aux_weight = args.aux_weight if args.aux_weight is not None else recipe.aux_weight
    lr = args.lr if args.lr is not None else recipe.lr

    torch.manual_seed(args.seed)
    model = create_model(name, in_chans=in_chans, num_classes=num_classes, aux_logits=aux).to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    steps_per_epoch = len(_epoch_batches(len(train_data), args.batch_size, 0, 0, d.rank, d.world, True))
    opt = _optimizer(recipe, model.parameters(), lr)
    sched, sched_unit = _scheduler(opt, recipe, lr, args.recipe == "paper", steps_per_epoch, args.epochs)
    loss_fn = InceptionLoss(label_smoothing=smoothing, aux_weight=aux_weight)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start_epoch, start_step = 0, 0
    if args.resume:
        state_path = Path(args.resume) / "last_state.pt" if Path(args.resume).is_dir() else Path(args.resume)
        if not state_path.is_file():
            raise TrainError(f"--resume: no training state at {state_path}")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        load_pretrained(model, state_path.with_name("last.safetensors"), source="ours")
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, start_step = state["epoch"], state["step_in_epoch"]
    net = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if device == "cuda" else None)

    log = open(out / "metrics.jsonl", "a", encoding="utf-8") if d.main else None
    global_step = start_epoch * steps_per_epoch + start_step
    metrics: dict = {}

    def save(epoch: int, step_in_epoch: int) -> None:
        if not d.main:
            return
        state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": _rng_state(), "model": name}
        _atomic_save({
            out / "last.safetensors": lambda p: save_weights(model, p),
            out / "last_state.pt": lambda p: torch.save(state, p),
        })

    stopped = False
    for epoch in range(start_epoch, args.epochs):
        net.train()
        batches = _epoch_batches(len(train_data), args.batch_size, args.seed, epoch, d.rank, d.world, True)
        first = start_step if epoch == start_epoch else 0
        seen = correct = 0
        loss_sum = 0.0
        t0 = time.perf_counter()
        bar = tqdm(batches[first:], desc=f"epoch {epoch + 1}/{args.epochs}", disable=not d.main or None,
                   leave=False, file=sys.stderr)
        for i, indices in enumerate(bar, start=first):
            item = train_data.batch(indices)
            if item is None or len(item[1]) < 2:  # every image of the batch but one was unreadable
                continue
            x, y = item[0].to(device), item[1].to(device)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, args.amp):
                output = net(x)
                loss = loss_fn(output, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.clip_grad and args.recipe == "paper":
                nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad)
            opt.step()
            if sched_unit == "step":
                sched.step()
            global_step += 1
            logits = output.logits if hasattr(output, "logits") else output
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            if d.main and log is not None and args.log_every and global_step % args.log_every == 0:
                log.write(json.dumps({"step": global_step, "epoch": epoch, "loss": float(loss.detach()),
                                      "lr": opt.param_groups[0]["lr"]}) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen * d.world / (time.perf_counter() - t0):.0f}")
            if args.max_steps and global_step >= args.max_steps:
                save(epoch, i + 1)
                stopped = True
                break
        if stopped:
            break
        if sched_unit == "epoch":
            sched.step()
        totals = _all_sum([loss_sum, correct, seen], d)
        with _autocast(device, args.amp):
            val = evaluate(model, val_data, args.batch_size, device, d, args.channels_last)
        metrics = {"epoch": epoch + 1, "train_loss": totals[0] / max(totals[2], 1),
                   "train_acc": totals[1] / max(totals[2], 1), **val,
                   "images_per_s": totals[2] / (time.perf_counter() - t0), "lr": opt.param_groups[0]["lr"],
                   "skipped_images": train_data.skipped + val_data.skipped}
        if d.main:
            log.write(json.dumps(metrics) + "\n")
            log.flush()
            print(f"epoch {epoch + 1}/{args.epochs}: loss {metrics['train_loss']:.4f}, train acc "
                  f"{metrics['train_acc']:.4f}, val top-1 {val['val_top1']:.4f}, top-5 {val['val_top5']:.4f}",
                  file=sys.stderr)
        save(epoch + 1, 0)
    if train_data.skipped or val_data.skipped:
        warnings.warn(f"{train_data.skipped + val_data.skipped} unreadable images were skipped", RuntimeWarning,
                      stacklevel=2)
    if d.world > 1:  # every rank reports its final weights, so that their identity can be checked
        (out / f"rank{d.rank}_final.json").write_text(json.dumps({"rank": d.rank, "params_sha256": _digest(model)}))
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    if log is not None:
        log.close()
    return metrics


def _autocast(device: str, enabled: bool):
    """Mixed precision: bf16 autocast (no loss scaling needed; BatchNorm and the loss stay in fp32)."""
    return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)


def _supports_aux(name: str) -> bool:
    from .registry import create_model

    try:
        with torch.device("meta"):
            create_model(name, aux_logits=True)
        return True
    except ValueError:
        return False


@torch.no_grad()
def evaluate(model: nn.Module, data, batch_size: int, device: str, d: _Dist, channels_last: bool = False) -> dict:
    """Top-1 / top-5 accuracy on ``data`` (sharded over the ranks, then summed)."""
    model.eval()
    correct1 = correct5 = seen = 0
    for indices in _epoch_batches(len(data), batch_size, 0, 0, d.rank, d.world, False):
        item = data.batch(indices)
        if item is None:
            continue
        x, y = item[0].to(device), item[1].to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x)
        correct1 += _topk(logits, y, 1)
        correct5 += _topk(logits, y, 5)
        seen += len(y)
    c1, c5, n = _all_sum([correct1, correct5, seen], d)
    return {"val_top1": c1 / max(n, 1), "val_top5": c5 / max(n, 1)}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="inception-zoo train", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=None, metavar="DIR",
                        help="ImageFolder root with train/ and val/ (default: scikit-learn's digits)")
    parser.add_argument("--model", default=None, help="model name (default: inception_v1_cifar)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (default: 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step and rank (default: 64)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--recipe", choices=["default", "paper"], default="default",
                        help="default: SGD + one-cycle; paper: the paper's optimizer and step decay")
    parser.add_argument("--label-smoothing", type=float, default=None, help="default: the recipe's (0 or 0.1)")
    parser.add_argument("--aux-weight", type=float, default=None,
                        help="weight of each auxiliary loss (default: the recipe's, 0.3 or 0.4)")
    parser.add_argument("--no-aux", action="store_true", help="train without the auxiliary heads")
    parser.add_argument("--max-steps", type=int, default=None, help="stop (with a checkpoint) after N steps")
    parser.add_argument("--resume", default=None, metavar="OUT", help="continue from OUT/last_state.pt")
    parser.add_argument("--out", default="runs/train", metavar="OUT", help="checkpoints and metrics.jsonl")
    parser.add_argument("--seed", type=int, default=0, help="initialization and data order (default: 0)")
    parser.add_argument("--log-every", type=int, default=0, metavar="N", help="also log every N steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-amp", dest="amp", action="store_false",
                        help="train in fp32 (default: bf16 mixed precision)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="keep the NCHW memory format (default: channels_last, faster on CPU and GPU)")
    return parser


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args(argv)
    try:
        for option in ("epochs", "batch_size"):
            if getattr(args, option) < 1:
                raise TrainError(f"--{option.replace('_', '-')} must be at least 1")
        metrics = train(args)
    except TrainError as e:
        print(f"inception-zoo train: error: {e}", file=sys.stderr)
        return 2
    if metrics:
        print(f"final: val top-1 {metrics['val_top1']:.4f}, top-5 {metrics['val_top5']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
