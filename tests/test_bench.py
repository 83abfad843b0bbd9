"""The comparison benchmark runs end to end and reports ratios computed from both sides, the runtime peers
and our deploy backends with their deviation from our eager logits, and an int8 run; benchmarks/compare.py
adds the machine report, the targets and the markdown report."""

import copy
import json
import re
import statistics
import sys
from pathlib import Path

import pytest
import torch

from inception_zoo.bench import build_parser, table
from inception_zoo.bench.measure import check_args, peer_choice
from inception_zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/compare.py and report.py, outside the package

import compare  # noqa: E402
from report import markdown, targets  # noqa: E402

TINY = ["--models", "inception_v1_bn", "--latency-iters", "1", "--sample-seconds", "0.01", "--threads", "1"]
RUNTIME_VARIANTS = {"deploy_onnxruntime", "deploy_openvino", "peer_onnxruntime", "peer_openvino"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One real run of ``inception-zoo bench`` on the smallest model with a peer (every measurement on but
    the memory probes, which test_memory_probe_measures_a_fresh_process covers; the two runtimes but not
    torch.compile, which takes minutes), its JSON report; the tests below read it, and feed it to the
    commands' reporting code."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["bench", *TINY, "--repeats", "2", "--batch-size", "2", "--channels-last", "--json", str(out),
            "--peers", "onnxruntime", "openvino", "--no-memory"]
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_bench_measures_every_variant_and_ratio(measured):
    report = measured
    assert set(report) == {"machine", "settings", "matmul", "runs"}
    # only what measuring needs; benchmarks/compare.py adds the machine report
    assert report["machine"] == {"device": "cpu", "threads": 1, "torch": torch.__version__}
    assert report["settings"]["batch_size"] == 2
    assert report["settings"]["peers"] == ["onnxruntime", "openvino"]
    assert report["matmul"]["gflops"]["fp32"] > 0 and report["matmul"]["sizes"] == [512, 1024, 2048]
    (run,) = report["runs"]
    assert run["dtype"] == "fp32"
    (entry,) = run["models"]
    assert entry["model"] == "inception_v1_bn" and entry["peer"] == "torchvision googlenet"
    res = entry["results"]
    assert list(res) == ["ours", "deploy", "deploy_onnxruntime", "deploy_openvino", "peer",
                         "peer_onnxruntime", "peer_openvino"]
    for name, r in res.items():
        assert r["latency_ms"] > 0 and r["throughput_img_s"] > 0 and r["setup_s"] > 0
        assert len(r["samples"]["latency"]) == 2 and r["precision"] == "fp32"
        assert r["achieved_gflops"] == pytest.approx(2 * entry["macs"] * r["throughput_img_s"] / 1e9)
        assert r["matmul_fraction"] == pytest.approx(r["achieved_gflops"] / report["matmul"]["gflops"]["fp32"])
        assert 0 <= r["max_deviation"] < 1e-4, name  # the same function in every runtime, float32
        assert r["peak_memory_mb"] is None  # --no-memory
    assert res["ours"]["max_deviation"] == 0  # the reference itself
    assert res["deploy"]["train_step_ms"] is None and res["ours"]["train_step_ms"] > 0
    assert {name for name, r in res.items() if r["train_step_ms"]} == {"ours", "peer"}
    assert set(entry["ratios"]) == {"ours/peer", "deploy/peer", "deploy_onnxruntime/peer_onnxruntime",
                                    "deploy_openvino/peer_openvino"}
    for key, ratios in entry["ratios"].items():
        mine, other = (res[k] for k in key.split("/"))
        assert ratios["latency"] == pytest.approx(other["latency_ms"] / mine["latency_ms"])
        assert ratios["throughput"] == pytest.approx(mine["throughput_img_s"] / other["throughput_img_s"])
    conv_only = res["deploy"]["conv_only_ms"]  # the deploy model's convolutions re-run alone, summed
    assert conv_only > 0 and res["deploy"]["conv_only_b1_ms"] > 0 and "conv_only_ms" not in res["ours"]
    peer_batch_ms = 1000 * 2 / res["peer"]["throughput_img_s"]
    assert entry["ratios"]["deploy/peer"]["ceiling"] == pytest.approx(peer_batch_ms / conv_only)
    assert "ceiling" not in entry["ratios"]["ours/peer"]
    assert entry["ratios"]["ours/peer"]["train"] == pytest.approx(res["peer"]["train_step_ms"] / res["ours"]["train_step_ms"])


@pytest.mark.slow
def test_bench_command_prints_the_table(measured, tmp_path, capsys, monkeypatch):
    import inception_zoo.bench.cli

    monkeypatch.setattr(inception_zoo.bench.cli, "run", lambda args: copy.deepcopy(measured))
    out = tmp_path / "again.json"
    assert main(["bench", "--models", "inception_v1_bn", "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == measured
    printed = capsys.readouterr().out
    assert "| fp32" in printed and f"wrote {out}" in printed
    assert "| max dev " in printed and "| setup (s) " in printed and "| vs " in printed
    for label in ("deploy (onnxruntime)", "deploy (openvino)", "torchvision googlenet (onnxruntime)",
                  "torchvision googlenet (openvino)", "peer (openvino)"):
        assert f"| {label} " in printed


def _with_fractions(report: dict, fractions: list[float | None]) -> dict:
    """``report`` with its first model's variants at these matmul fractions, in order."""
    report = copy.deepcopy(report)
    results = report["runs"][0]["models"][0]["results"]
    for result, fraction in zip(results.values(), fractions, strict=False):
        result["matmul_fraction"] = fraction
    return report


@pytest.mark.slow
def test_table_flags_a_rate_above_the_matmul_reference(measured):
    """A model cannot compute faster than the machine multiplies: above the reference is a measurement
    problem, shown as check!, never as a fraction over 100%; no reference (emulated bf16, int8) shows -."""
    text = table(_with_fractions(measured, [0.5, 1.3, None]))
    rows = [line.split("|")[9].strip() for line in text.splitlines()[2:]]
    assert rows[:3] == ["50%", "check!", "-"]
    assert not any(cell.endswith("%") and int(cell[:-1]) > 100 for cell in rows)


@pytest.mark.slow
def test_compare_adds_machine_report_targets_and_markdown(measured, tmp_path, capsys, monkeypatch):
    report = copy.deepcopy(measured)
    report["settings"]["batch_size"] = 8  # where the targets are defined (their arithmetic is tested below)
    monkeypatch.setattr(compare, "run", lambda args: report)
    out, md = tmp_path / "compare.json", tmp_path / "compare.md"
    argv = ["--models", "inception_v1_bn", "--repeats", "2", "--latency-iters", "1",
            "--sample-seconds", "0.01", "--channels-last", "--no-train", "--no-memory",
            "--json", str(out), "--markdown", str(md), "--threads", "2"]
    assert compare.main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "settings", "matmul", "runs"}
    assert set(report["machine"]) == {"cpu", "cores", "python", "torch", "torchvision", "timm", "device", "threads"}
    assert report["machine"]["device"] == "cpu" and report["runs"] == measured["runs"]
    rows = targets(report)
    assert [row[1] for row in rows] == [
        "ours/peer latency: tie, median 0.95-1.05 and range holding 1.0",
        "ours/peer throughput: tie, median 0.95-1.05 and range holding 1.0",
        "ours/peer train: tie, median 0.95-1.05 and range holding 1.0",
        "batch 1: fastest ours / best runtime peer >= 1.0",
        "batch 8: fastest ours / best runtime peer >= 1.0",
    ]
    assert {row[0] for row in rows} == {"inception_v1_bn"}
    assert rows[0][2] == "ours vs torchvision googlenet"
    runtime = r"deploy( \((onnxruntime|openvino)\))? vs torchvision googlenet \((onnxruntime|openvino)\)"
    assert all(re.fullmatch(runtime, row[2]) for row in rows[3:])
    printed = capsys.readouterr().out
    assert "| fp32" in printed
    assert "| inception_v1_bn | batch 8: fastest ours / best runtime peer >= 1.0 " in printed
    text = md.read_text()
    command = "Command: `python benchmarks/compare.py --models inception_v1_bn --repeats 2 --latency-iters 1"
    assert command in text
    assert "# Benchmarks" in text and "matrix-multiply reference" in text and "fp32 " in text
    assert f"- cpu: {report['machine']['cpu']}" in text and f"- cores: {report['machine']['cores']}" in text
    assert "## Targets (CPU, batch 1 and 8, channels_last)" in text and "onnxruntime, openvino" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--sample-seconds", "inf"], "must be a positive, finite number of seconds, got inf"),
    (["--batch-size", "abc"], "must be a positive integer, got 'abc'"),
    (["--repeats", "0"], "must be a positive integer, got 0"),
    (["--peers", "tensorrt"], "argument --peers: invalid choice: 'tensorrt'"),
    (["--dtype", "int4"], "argument --dtype: invalid choice: 'int4'"),
    (["--markdown", "report.md"], "unrecognized arguments: --markdown report.md"),  # benchmarks/compare.py's
])
def test_bench_option_errors_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "device", "expected"), [
    ([], "cpu", ["onnxruntime", "openvino", "compile"]),  # every installed runtime, and compile
    ([], "cuda", ["compile"]),  # the runtimes run on CPU
    (["--peers"], "cpu", []),
    (["--peers", "none"], "cpu", []),
    (["--peers", "compile", "openvino"], "cpu", ["openvino", "compile"]),
])
def test_peers_selects_the_runtime_peers(argv, device, expected):
    args = build_parser().parse_args([*argv, "--device", device])
    assert peer_choice(args) == expected


@pytest.mark.parametrize(("argv", "message"), [
    (["--peers", "none", "openvino"], "--peers none cannot be combined with openvino"),
    (["--peers", "onnxruntime", "--device", "cuda"], "--peers onnxruntime: the runtimes run on CPU"),
    (["--dtype", "fp32", "int8", "--device", "cuda"], "--dtype int8 runs on CPU only"),
])
def test_bench_refuses_impossible_combinations(argv, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # past the no-CUDA check, to the one tested
    with pytest.raises(ValueError, match=message):
        check_args(build_parser().parse_args(argv))


def test_bench_refuses_a_missing_runtime(monkeypatch):
    import inception_zoo.deploy

    monkeypatch.setattr(inception_zoo.deploy, "available_backends", lambda: ["torch"])
    with pytest.raises(SystemExit, match="--peers openvino: the openvino package .* is not installed"):
        main(["bench", "--models", "inception_v1_bn", "--peers", "openvino"])
    with pytest.raises(SystemExit, match="--dtype int8 needs onnxruntime"):
        main(["bench", "--models", "inception_v1_bn", "--dtype", "int8", "--peers", "none"])


@pytest.mark.slow
def test_int8_run_times_the_quantized_model_beside_our_fp32_paths(tmp_path, monkeypatch):
    quantize = pytest.importorskip("inception_zoo.deploy.quantize", reason="no inception_zoo.deploy.quantize")
    calls = []

    def spy(model, calibration_data, backend="onnxruntime", **options):
        calls.append((model.name, tuple(calibration_data.shape), backend, options))
        return real(model, calibration_data, backend, **options)

    real = quantize.quantize
    monkeypatch.setattr(quantize, "quantize", spy)
    out = tmp_path / "int8.json"
    argv = ["bench", *TINY, "--repeats", "1", "--batch-size", "2", "--no-memory", "--no-train", "--peers",
            "none", "--dtype", "int8", "--json", str(out)]
    assert main(argv) == 0
    # calibrated on 16 random images at the input size, at the benchmark's threads
    assert calls == [("inception_v1_bn", (16, 3, 224, 224), "onnxruntime", {"threads": 1})]
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    (entry,) = run["models"]
    res = entry["results"]
    assert run["dtype"] == "int8" and list(res) == ["ours", "deploy", "int8_onnxruntime"]  # no peer
    assert [r["precision"] for r in res.values()] == ["fp32", "fp32", "int8"]
    assert res["int8_onnxruntime"]["matmul_fraction"] is None and res["deploy"]["matmul_fraction"] > 0
    assert res["deploy"]["max_deviation"] < 1e-4
    assert 0 < res["int8_onnxruntime"]["max_deviation"] < 0.5  # quantized on random images: close, not equal
    assert entry["fp32_best"] == {"latency": "deploy", "throughput": "deploy"}  # our only fp32 path here
    int8, fp32 = res["int8_onnxruntime"], res["deploy"]
    ratios = entry["ratios"]["int8_onnxruntime/fp32_best"]
    assert ratios["throughput"] == pytest.approx(int8["throughput_img_s"] / fp32["throughput_img_s"])
    assert ratios["latency"] == pytest.approx(fp32["latency_ms"] / int8["latency_ms"])
    text = table(report)
    assert "| ours (fp32) " in text and "| deploy (fp32) " in text and "| deploy (onnxruntime, int8) " in text
    assert "| fp32 best " in text


def test_bench_checks_output_folders_before_measuring(tmp_path):
    from inception_zoo import bench

    missing = tmp_path / "no" / "such" / "report.json"
    with pytest.raises(SystemExit, match="--json .* does not exist or is not writable"):
        bench.main(["--models", "inception_v1_bn", "--json", str(missing)])  # python -m inception_zoo.bench
    with pytest.raises(SystemExit, match="--json .* does not exist or is not writable"):
        compare.main(["--models", "inception_v1_bn", "--json", str(missing)])
    with pytest.raises(SystemExit, match="--markdown .* does not exist or is not writable"):
        compare.main(["--json", str(tmp_path / "ok.json"), "--markdown", str(missing)])
    assert not (tmp_path / "ok.json").exists()


def test_bench_rejects_models_without_peer():
    with pytest.raises(SystemExit, match="no model with a peer matches 'inception_resnet_v1'"):
        main(["bench", "--models", "inception_resnet_v1", "--no-memory"])


def test_matmul_reference_only_for_native_precisions(monkeypatch):
    from inception_zoo.bench import timing

    rates = {"fp32": 100.0, "bf16": 300.0}
    monkeypatch.setattr(timing, "matmul_gflops", lambda device, precision: rates[precision])
    monkeypatch.setattr(timing, "_cpu_flags", lambda: {"avx2", "fma"})  # this project's machine: no bf16
    assert timing.native_precisions("cpu") == ["fp32"]
    assert timing.matmul_rates("cpu", ["fp32", "bf16"]) == {"fp32": 100.0}
    monkeypatch.setattr(timing, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert timing.native_precisions("cpu") == ["fp32", "bf16"]
    assert timing.matmul_rates("cpu", ["bf16", "int8"]) == {"fp32": 100.0, "bf16": 300.0}
    assert timing.matmul_rates("cpu", ["fp32"]) == {"fp32": 100.0}  # bf16 only for a bf16 run


def _result(latency, throughput, train=(), **extra):
    """A variant's result as the report stores it: samples in ms per forward (per step for train), and
    the medians derived from them (batch 8)."""
    median = statistics.median
    return {"samples": {"latency": list(latency), "throughput": list(throughput), "train": list(train)},
            "latency_ms": median(latency), "throughput_img_s": 8000 / median(throughput), "precision": "fp32",
            **extra}


def _synthetic_report() -> dict:
    """A hand-made CPU report at batch 8 with channels_last, three repeats per figure: inception_v3 in the
    fp32 run with every variant, and in the int8 run."""
    fp32 = {
        "model": "inception_v3", "peer": "timm inception_v3", "ratios": {},
        "results": {
            # tie: latency 1.00 in 0.98-1.02 (met); throughput 1.04 but every repeat above 1 (not met);
            # train 0.90 (not met)
            "ours": _result([100, 100, 100], [800, 800, 800], [1000, 1000, 1000]),
            "peer": _result([98, 100, 102], [832, 840, 824], [900, 900, 900]),
            "deploy": _result([80, 80, 80], [640, 640, 640], conv_only_ms=400.0, conv_only_b1_ms=50.0),
            "deploy_onnxruntime": _result([70, 70, 70], [700, 700, 700]),
            "deploy_openvino": _result([90, 90, 90], [600, 610, 620]),
            "peer_onnxruntime": _result([75, 77, 73], [720, 720, 720]),
            "peer_openvino": _result([95, 95, 95], [660, 590, 630]),
            "peer_compile": _result([85, 85, 85], [580, 580, 580]),
        },
    }
    int8 = {
        "model": "inception_v3", "peer": "timm inception_v3", "ratios": {},
        "results": {
            "deploy": _result([80, 80, 80], [640, 640, 640]),
            "deploy_openvino": _result([90, 90, 90], [600, 600, 600]),
            "int8_onnxruntime": _result([50, 50, 50], [400, 380, 420], precision="int8"),
        },
    }
    return {"machine": {"device": "cpu"}, "settings": {"batch_size": 8, "channels_last": True},
            "runs": [{"dtype": "fp32", "models": [fp32]}, {"dtype": "int8", "models": [int8]}]}


def test_targets_tie_runtime_and_int8_rows():
    rows = targets(_synthetic_report())
    tie = "ours/peer {}: tie, median 0.95-1.05 and range holding 1.0"
    assert rows == [
        # peer time / our time per repeat: 98/100, 100/100, 102/100 -> 0.98-1.02, median 1.00
        ["inception_v3", tie.format("latency"), "ours vs timm inception_v3", "1.00", "0.98-1.02", "yes", "-"],
        # 832/800, 840/800, 824/800: median 1.04 inside 0.95-1.05, but no repeat at or below 1.0
        ["inception_v3", tie.format("throughput"), "ours vs timm inception_v3", "1.04", "1.03-1.05", "**no**", "-"],
        ["inception_v3", tie.format("train"), "ours vs timm inception_v3", "0.90", "0.90-0.90", "**no**", "-"],
        # batch 1: fastest ours deploy (onnxruntime) 70 ms vs the fastest runtime peer, onnxruntime 75 ms;
        # ceiling 75 / 50 ms of convolutions
        ["inception_v3", "batch 1: fastest ours / best runtime peer >= 1.0",
         "deploy (onnxruntime) vs timm inception_v3 (onnxruntime)", "1.07", "1.04-1.10", "yes", "1.50"],
        # batch 8: fastest ours deploy (openvino) 610 ms vs compiled peer 580 ms; ceiling 580 / 400
        ["inception_v3", "batch 8: fastest ours / best runtime peer >= 1.0",
         "deploy (openvino) vs timm inception_v3 (compile)", "0.95", "0.94-0.97", "**no**", "1.45"],
        # int8 400 ms vs the fastest fp32 path, deploy (openvino) 600 ms: 1.5 per repeat 1.50-1.58
        ["inception_v3", "batch 8: int8 / fastest ours fp32 >= 1.5",
         "deploy (onnxruntime, int8) vs deploy (openvino, fp32)", "1.50", "1.43-1.58", "yes", "-"],
    ]


def test_runtime_target_within_noise_is_a_tie():
    """Below 1.0 but with single repeats on both sides of it, the median at least 0.97: "tie", not a miss."""
    report = _synthetic_report()
    results = report["runs"][0]["models"][0]["results"]
    results["peer_compile"]["samples"]["throughput"] = [600, 600, 620]  # ours (openvino): 600, 610, 620
    row = targets(report)[4]
    assert row[1].startswith("batch 8") and row[3:6] == ["0.98", "0.98-1.00", "tie"]
    results["peer_compile"]["samples"]["throughput"] = [590, 590, 590]  # every repeat below 1.0
    assert targets(report)[4][5] == "**no**"


def test_runtime_target_missed_on_the_same_graph_is_a_tie(monkeypatch):
    """The best peer is the peer in OpenVINO, which also ran ours: where both export the same graph (a
    stub here; the real check exports both, tested below), the miss says "tie (same graph)"."""
    import report

    rep = _synthetic_report()
    results = rep["runs"][0]["models"][0]["results"]
    results["peer_openvino"] = _result([95, 95, 95], [540, 550, 560])  # ours in openvino: 600, 610, 620
    asked = []
    for same in (True, False):
        monkeypatch.setattr(report, "same_graph", lambda name, same=same: asked.append(name) or same)
        row = targets(rep)[4]
        assert row[2] == "deploy (openvino) vs timm inception_v3 (openvino)" and row[3] == "0.90"
        assert row[5] == ("tie (same graph)" if same else "**no**")
    assert asked == ["inception_v3", "inception_v3"]


@pytest.mark.heavy
def test_same_graph_compares_the_exports():
    """Ours and its peer export to the same graph; a different architecture does not."""
    import report

    assert report.same_graph("inception_v1_bn")
    from inception_zoo import create_model
    from inception_zoo.bench.measure import _ours_and_peer

    ours, _ = _ours_and_peer("inception_v1_bn")

    size = (3, 224, 224)
    assert report._graph(ours, size) != report._graph(create_model("bn_inception").eval(), size)


def test_targets_say_what_was_not_measured():
    report = _synthetic_report()
    results = report["runs"][0]["models"][0]["results"]
    for key in ("peer_onnxruntime", "peer_openvino", "peer_compile"):  # --peers none
        del results[key]
    results["ours"]["samples"]["train"] = []  # --no-train
    rows = targets(report)
    met = [row[5] for row in rows]
    assert met == ["yes", "**no**", "not measured", "not measured", "not measured", "yes"]
    report["settings"]["batch_size"] = 4
    assert targets(report) == []  # the targets are defined at batch 8


def test_markdown_states_the_reference_rates_and_the_emulated_precisions():
    report = _synthetic_report()
    report["runs"].append({"dtype": "bf16", "models": []})
    report["machine"].update(threads=2)
    report["settings"].update(compile=False, repeats=3, sample_seconds=0.5, peers=["onnxruntime", "compile"])
    report["matmul"] = {"gflops": {"fp32": 151.4}, "sizes": [512, 1024, 2048], "native": ["fp32"]}
    for run in report["runs"]:
        for entry in run["models"]:
            entry.update(macs=1, iterations_per_sample={})
            for result in entry["results"].values():
                result.update(train_step_ms=None, achieved_gflops=1.0, matmul_fraction=0.5, max_deviation=0.0,
                              setup_s=1.0)
    text = markdown(report, "python benchmarks/compare.py")
    assert ("n = 512, 1024, 2048; measured at the start and at the end, the better kept): fp32 151 GFLOP/s; "
            "bf16: none (not native on this cpu)") in text
    assert "as `--peers` selects (onnxruntime, compile)" in text
    assert "calibrated on 16 random-normal images" in text
    assert "| inception_v3 | batch 8: int8 / fastest ours fp32 >= 1.5 " in text


def test_compared_pairs_are_timed_back_to_back_each_leading_in_turn(monkeypatch):
    """Ours and the eager peer, and ours and the peer in each runtime, take their samples one right after the
    other (drift of the machine cancels in their per-repeat ratio), each side first in every other round;
    the round order still rotates."""
    import argparse

    from tqdm import tqdm

    from inception_zoo.bench import measure, timing

    calls = []

    class Named(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append((self.name, x.shape[0]))
            return x

    monkeypatch.setattr(timing, "SETTLE_SECONDS", 0)
    names = ["ours", "deploy_onnxruntime", "peer", "peer_onnxruntime", "peer_compile"]
    models = {v: Named(v) for v in names}
    groups = measure._groups(models)
    assert groups == [("ours", "peer"), ("deploy_onnxruntime", "peer_onnxruntime"), ("peer_compile",)]
    args = argparse.Namespace(repeats=4, sample_seconds=0.0, latency_iters=1, device="cpu")
    x1, xn = torch.zeros(1, 3), torch.zeros(2, 3)
    times, _, iters = timing.time_eval(models, x1, xn, args, progress=tqdm(disable=True),
                                       groups=groups)
    assert all(len(t["latency"]) == len(t["throughput"]) == 4 for t in times.values())
    timed = calls[len(names) * 4 + iters["latency"] + iters["throughput"]:]  # after warm-up and calibration
    per_sample = {1: 1 + iters["latency"], 2: 1 + iters["throughput"]}  # the untimed call and the timed ones
    samples, i = [], 0
    while i < len(timed):
        samples.append(timed[i])
        i += per_sample[timed[i][1]]
    rounds = [samples[k:k + 10] for k in range(0, 40, 10)]
    assert rounds[0] == [("ours", 1), ("peer", 1), ("ours", 2), ("peer", 2),
                         ("deploy_onnxruntime", 1), ("peer_onnxruntime", 1),
                         ("deploy_onnxruntime", 2), ("peer_onnxruntime", 2),
                         ("peer_compile", 1), ("peer_compile", 2)]
    assert rounds[1][:4] == [("peer_onnxruntime", 1), ("deploy_onnxruntime", 1),
                             ("peer_onnxruntime", 2), ("deploy_onnxruntime", 2)]
    assert rounds[1][-4:] == [("peer", 1), ("ours", 1), ("peer", 2), ("ours", 2)]
    assert rounds[2][:2] == [("peer_compile", 1), ("peer_compile", 2)]
    with pytest.raises(ValueError, match="each of the variants"):
        timing.time_eval(models, x1, xn, args, progress=None, groups=[("ours", "peer")])


@pytest.mark.slow
def test_memory_probe_measures_a_fresh_process():
    """The memory column: one eval forward's resident-set growth in a child process, for the variants
    that are plain PyTorch modules (one probed here: each child imports torch and builds the model)."""
    import argparse

    from inception_zoo.bench.measure import _probed
    from inception_zoo.bench.memory import peak_memory_mb

    args = argparse.Namespace(device="cpu", batch_size=2, channels_last=True, threads=1, memory=True)
    assert _probed(args, "fp32") == ("ours", "deploy", "peer")
    assert 1 < peak_memory_mb("inception_v1_bn", "deploy", "fp32", args) < 2000



def test_the_fid_section_is_replaced_in_place_and_kept_by_compare(tmp_path):
    """benchmarks/fid.py writes its section between markers (appended the first time, replaced later);
    benchmarks/compare.py, rewriting docs/benchmarks.md, keeps it."""
    import fid as fid_bench

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nrows\n")
    first = f"{fid_bench.BEGIN}\nold\n{fid_bench.END}"
    fid_bench.write_section(doc, first)
    assert doc.read_text() == f"# Benchmarks\n\nrows\n\n{first}\n"
    fid_bench.write_section(doc, f"{fid_bench.BEGIN}\nnew\n{fid_bench.END}")
    assert doc.read_text() == f"# Benchmarks\n\nrows\n\n{fid_bench.BEGIN}\nnew\n{fid_bench.END}\n"
    assert compare._kept_fid_section(str(doc)) == f"{fid_bench.BEGIN}\nnew\n{fid_bench.END}"
    assert compare._kept_fid_section(str(tmp_path / "missing.md")) == ""
