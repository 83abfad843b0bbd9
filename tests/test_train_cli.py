"""The command line of inception-zoo train: one clear line for every bad option or --resume state, the
precision line, the progress bar in a log, and corrupt checkpoints told in words (never a bare number)."""

import argparse
import io
import re
import zipfile

import pytest
import torch

from inception_zoo.train import cli, loop, main, run
from inception_zoo.weights import CheckpointError
from inception_zoo.weights.reader import load_torch_file

PREFIX = "inception-zoo train: error: "


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(PREFIX), err
    return err[0][len(PREFIX):]


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if the run starts: the options must be refused before anything is read or built."""
    monkeypatch.setattr(loop, "_init_distributed", lambda device: pytest.fail("the run started"))


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a model is built: a bad --resume state must be refused before (and the data)."""
    monkeypatch.setattr(run, "create_model", lambda *a, **k: pytest.fail("model built"))


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--label-smoothing", "2"], "--label-smoothing must be a finite number in [0, 1), got 2.0"),
    (["--label-smoothing", "1"], "--label-smoothing must be a finite number in [0, 1), got 1.0"),
    (["--label-smoothing", "-0.1"], "--label-smoothing must be a finite number in [0, 1), got -0.1"),
    (["--aux-weight", "-1"], "--aux-weight must be a finite number >= 0, got -1.0"),
    (["--aux-weight=-inf"], "--aux-weight must be a finite number >= 0, got -inf"),
    (["--max-steps", "-3"], "--max-steps must be at least 1 when given, got -3"),
    (["--max-steps", "0"], "--max-steps must be at least 1 when given, got 0"),
    (["--log-every", "-1"], "--log-every must be an integer >= 0 (0: once per epoch only), got -1"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 2**32 - 1, got -1"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "-2"], "--batch-size must be at least 1, got -2"),
    (["--device", "tpu"], "--device 'tpu' is no device torch knows; available on this machine: cpu"),
    (["--device", "cuda"], "--device cuda: no cuda device on this machine; available: cpu"),
    (["--device", "cuda:1"], "--device cuda:1: no cuda device on this machine; available: cpu"),
    (["--device", "meta"], "--device meta: no meta device on this machine; available: cpu"),
])
def test_bad_option_is_one_line_before_anything_is_built(argv, message, capsys, monkeypatch, nothing_built):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, also on a GPU one
    monkeypatch.setattr(run, "_devices", lambda: ["cpu"])  # and no mps
    assert main([*argv, "--out", "unused"]) == 2
    assert _one_line(capsys) == message


def test_cuda_index_beyond_the_gpus_is_one_line(capsys, monkeypatch, nothing_built):
    monkeypatch.setattr(run, "_devices", lambda: ["cpu", "cuda"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main(["--device", "cuda:3", "--out", "unused"]) == 2
    assert _one_line(capsys) == "--device cuda:3: this machine has 1 CUDA device (cuda:0)"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert main(["--device", "cuda:2", "--out", "unused"]) == 2
    assert _one_line(capsys) == "--device cuda:2: this machine has 2 CUDA devices (cuda:0 to cuda:1)"


def test_devices_names_what_torch_finds(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert run._devices()[:2] == ["cpu", "cuda"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run._devices()[0] == "cpu" and "cuda" not in run._devices()


def test_amp_and_no_amp_are_exclusive():
    parse = cli.build_parser().parse_args
    assert parse([]).amp is None and parse(["--amp"]).amp is True and parse(["--no-amp"]).amp is False
    with pytest.raises(SystemExit) as e:
        parse(["--amp", "--no-amp"])
    assert e.value.code == 2


# ------------------------------------------------------------------------------------------ precision
@pytest.mark.parametrize("native", [False, True])
def test_precision_line_says_what_and_why(native, monkeypatch):
    from inception_zoo import _onednn
    from inception_zoo.train.run import _precision

    monkeypatch.setattr(_onednn, "bf16_available", lambda: native)
    auto = (
        (True, "precision: bf16 autocast (native on this CPU: AVX512-BF16/AMX; --no-amp forces fp32)") if native
        else (False, "precision: fp32 (this CPU has no native bf16: AVX512-BF16/AMX; --amp forces bf16 autocast)")
    )
    assert _precision("cpu", None) == auto
    assert _precision("cpu", False) == (False, "precision: fp32 (--no-amp)")
    forced = "native on this CPU" if native else "emulated on this CPU, several times slower than fp32"
    assert _precision("cpu", True) == (True, f"precision: bf16 autocast (--amp; {forced})")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: native)
    gpu = _precision("cuda", None)[1]
    assert gpu == ("precision: bf16 autocast (native on this GPU; --no-amp forces fp32)" if native
                   else "precision: fp32 (this GPU has no native bf16; --amp forces bf16 autocast)")


def test_two_steps_print_the_precision_and_the_progress_to_a_log(tmp_path, capsys, monkeypatch):
    """stderr is no terminal here (pytest captures it): the bar is drawn anyway, in ASCII, and its last
    state (2 of the epoch's 89 steps of 16 digits) is kept. Resuming the run with the same --max-steps is
    refused (it would have made a third step)."""
    from inception_zoo import _onednn

    monkeypatch.setattr(_onednn, "bf16_available", lambda: False)
    assert main(["--epochs", "1", "--batch-size", "16", "--max-steps", "2", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "precision: fp32 (this CPU has no native bf16: AVX512-BF16/AMX; --amp forces bf16 autocast)"
    )
    assert re.search(r"\repoch 1/1: +2%\|[#\d ]{10}\| 2/89 \[[^\r]*loss=[\d.]+\]\n", err), err
    # resumed with as many steps as it has made: one line, not a step more
    assert main(["--epochs", "1", "--batch-size", "16", "--max-steps", "2", "--resume", str(tmp_path),
                 "--out", str(tmp_path)]) == 2
    assert _one_line(capsys) == "--max-steps 2: the resumed run has made 2 steps already"


def test_progress_bar_is_off_on_other_ranks():
    from inception_zoo.train.distributed import _Dist
    from inception_zoo.train.loop import _progress

    fake = argparse.Namespace(args=argparse.Namespace(epochs=1), d=_Dist(rank=1, world=2))
    with _progress(fake, 0, 0, 10) as bar:
        assert bar.disable
    fake.d = _Dist(rank=0, world=2)
    with _progress(fake, 0, 3, 10) as bar:
        assert not bar.disable and bar.n == 3 and bar.total == 10


# ------------------------------------------------------------------------------------------ --resume
def _state(model="inception_v1_cifar") -> dict:
    return {"epoch": 0, "step_in_epoch": 2, "optimizer": {"state": {}, "param_groups": []},
            "scheduler": {}, "rng": {"torch": torch.zeros(3, dtype=torch.uint8)}, "model": model}


def _zip_with(pkl: bytes | None = None, drop: str = "") -> bytes:
    """torch.save's zip of a small training state, its data.pkl replaced by ``pkl``, its ``drop`` record
    left out."""
    buf = io.BytesIO()
    torch.save(_state(), buf)
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            if not (drop and name.endswith(drop)):
                z.writestr(name, pkl if pkl is not None and name.endswith("data.pkl") else src.read(name))
    return out.getvalue()


def _legacy() -> bytes:
    buf = io.BytesIO()
    torch.save(_state(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


CORRUPT = {  # the file's bytes -> what the message says is wrong with them
    "empty": (lambda: b"", "the file is empty"),
    "text": (lambda: b"hi there\n", "its bytes are neither a zip archive nor a pickle that torch.save writes"),
    # the stray ": 105": torch's weights-only unpickler raises KeyError(105) (str: "105") for a memo lookup
    # ('h' BINGET, then 'i' = 105) of an entry the pickle never stored, and "Unsupported operand 105" for
    # opcode 'i' (INST), which it does not read
    "memo": (lambda: b"\x80\x02hi", "its pickle refers to object 105 of its memo, which it never stored"),
    "zip memo": (lambda: _zip_with(b"\x80\x02hi"),
                 "its data.pkl refers to object 105 of its memo, which it never stored"),
    "opcode i": (lambda: _zip_with(b"\x80\x02i"),
                 "its data.pkl holds opcode 105 ('i', INST), which torch.save never writes"),
    "legacy opcode i": (lambda: b"\x80\x02i0\n",
                        "its pickle holds opcode 105 ('i', INST), which torch.save never writes"),
    "no opcode": (lambda: _zip_with(b"\x80\x02\xff"), "its data.pkl holds byte 255 (0xff) where an opcode should be"),
    "utf-8": (lambda: _zip_with(b"\x80\x02X\x02\x00\x00\x00\xff\xfe."),
              "a string in its data.pkl is not valid UTF-8 (byte 0xff at offset 0)"),
    "stack": (lambda: b"\x80\x02e.", "its pickle is malformed (pop from empty list)"),
    "cut zip": (lambda: _zip_with()[:-100], "its zip archive is damaged (failed finding central directory)"),
    "no record": (lambda: _zip_with(drop="data/0"),
                  "its zip archive is damaged (locating file data/0: file not found)"),
    "cut legacy": (lambda: _legacy()[:-20], "its data ends early"),
    "cut pickle": (lambda: _zip_with(_cut_at(b"step_in_epoch", 4)), "its data ends early"),
    "cut in a name": (lambda: _zip_with(_cut_at(b"OrderedDict", 7)),
                      "its data.pkl is damaged: it cannot be read to its end"),  # not "needs collections.Ordere"
    "cut after a name": (lambda: _zip_with(_cut_at(b"OrderedDict\n", 13)), "its data ends early"),
}


def _cut_at(text: bytes, after: int) -> bytes:
    """The data.pkl of :func:`_zip_with`, cut ``after`` bytes into the first ``text``."""
    z = zipfile.ZipFile(io.BytesIO(_zip_with()))
    pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    return pkl[: pkl.index(text) + after]


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupt_checkpoint_is_told_in_words(kind, tmp_path):
    make, why = CORRUPT[kind]
    path = tmp_path / "last_state.pt"
    path.write_bytes(make())
    with pytest.raises(CheckpointError) as e:
        load_torch_file(path)
    assert str(e.value) == f"{str(path)!r} is not a readable PyTorch checkpoint (truncated or corrupt?): {why}"
    assert not re.search(r":\s*\d+\.?$", str(e.value)), e.value  # never a bare number at the end


def test_resume_memo_105_is_one_line_in_words(tmp_path, capsys, no_model):
    (tmp_path / "last_state.pt").write_bytes(b"\x80\x02hi")
    assert main(["--resume", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert _one_line(capsys) == (
        f"--resume: {str(tmp_path / 'last_state.pt')!r} is not a readable PyTorch checkpoint (truncated or "
        "corrupt?): its pickle refers to object 105 of its memo, which it never stored"
    )


@pytest.mark.parametrize("setup, message", [
    ("missing", "--resume {tmp}/run: no such folder or file"),
    ("empty folder", "--resume {tmp}/run: no training state there ({tmp}/run/last_state.pt does not exist)"),
    ("folder state", "--resume {tmp}/run: no training state there ({tmp}/run/last_state.pt is not a file)"),
    ("text", "--resume: '{tmp}/run/last_state.pt' is not a readable PyTorch checkpoint (truncated or corrupt?): "
             "its bytes are neither a zip archive nor a pickle that torch.save writes"),
    ("weights only", "--resume: {tmp}/run/last_state.pt is no training state of inception-zoo train (it holds "
                     "no 'epoch', 'step_in_epoch', 'optimizer', 'scheduler', 'rng', 'model')"),
    ("tensor", "--resume: {tmp}/run/last_state.pt is no training state of inception-zoo train (it holds a "
               "Tensor, not a dict)"),
    ("other model", "--resume: {tmp}/run/last_state.pt is a state of xception_cifar, not of inception_v1_cifar "
                    "(the default --model)"),
])
def test_bad_resume_is_one_line_before_anything_is_built(setup, message, tmp_path, capsys, no_model):
    folder = tmp_path / "run"
    if setup != "missing":
        folder.mkdir()
    state = folder / "last_state.pt"
    if setup == "folder state":
        state.mkdir()
    elif setup == "text":
        state.write_text("epoch 3\n")
    elif setup == "weights only":
        torch.save({"conv.weight": torch.ones(1)}, state)
    elif setup == "tensor":
        torch.save(torch.ones(1), state)
    elif setup == "other model":
        torch.save(_state("xception_cifar"), state)
    assert main(["--resume", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert _one_line(capsys) == message.format(tmp=tmp_path)


def test_resume_without_its_weights_is_one_line(tmp_path, capsys):
    torch.save(_state(), tmp_path / "last_state.pt")
    assert main(["--resume", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert _one_line(capsys) == (
        f"--resume: inception_v1_cifar: checkpoint {str(tmp_path / 'last.safetensors')!r} does not exist or is "
        "not a file"
    )
    assert not (tmp_path / "metrics.jsonl").exists()
