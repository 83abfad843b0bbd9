"""The comparison benchmark runs end to end and reports ratios computed from both sides; benchmarks/compare.py
adds the machine report, the targets and the markdown report."""

import copy
import json
import sys
from pathlib import Path

import pytest
import torch

from inception_zoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/compare.py and report.py, outside the package

import compare  # noqa: E402
from report import targets  # noqa: E402


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One real run of ``inception-zoo bench`` on the smallest model with a peer (every measurement on),
    its JSON report; the tests below read it, and feed it to the commands' reporting code."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["bench", "--models", "inception_v1_bn", "--repeats", "2", "--batch-size", "2", "--latency-iters", "1",
            "--sample-seconds", "0.01", "--channels-last", "--json", str(out), "--threads", "1"]
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_bench_measures_every_variant_and_ratio(measured):
    report = measured
    assert set(report) == {"machine", "settings", "matmul_gflops", "runs"}
    # only what measuring needs; benchmarks/compare.py adds the machine report
    assert report["machine"] == {"device": "cpu", "threads": 1, "torch": torch.__version__}
    assert report["matmul_gflops"] > 0 and report["settings"]["batch_size"] == 2
    (run,) = report["runs"]
    assert run["dtype"] == "fp32"
    (entry,) = run["models"]
    assert entry["model"] == "inception_v1_bn" and entry["peer"] == "torchvision googlenet"
    res = entry["results"]
    assert set(res) == {"ours", "deploy", "peer"}
    for r in res.values():
        assert r["latency_ms"] > 0 and r["throughput_img_s"] > 0 and r["peak_memory_mb"] is not None
        assert len(r["samples"]["latency"]) == 2
        assert r["achieved_gflops"] == pytest.approx(2 * entry["macs"] * r["throughput_img_s"] / 1e9)
        assert r["matmul_fraction"] == pytest.approx(r["achieved_gflops"] / report["matmul_gflops"])
    assert res["deploy"]["train_step_ms"] is None and res["ours"]["train_step_ms"] > 0
    for variant in ("ours", "deploy"):
        ratios = entry["ratios"][f"{variant}/peer"]
        assert ratios["latency"] == pytest.approx(res["peer"]["latency_ms"] / res[variant]["latency_ms"])
        assert ratios["throughput"] == pytest.approx(res[variant]["throughput_img_s"] / res["peer"]["throughput_img_s"])
    conv_only = res["deploy"]["conv_only_ms"]  # the deploy model's convolutions re-run alone, summed
    assert conv_only > 0 and "conv_only_ms" not in res["ours"]
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
    assert "| fp32" in printed and "torchvision googlenet" in printed and f"wrote {out}" in printed


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
    assert set(report) == {"machine", "settings", "matmul_gflops", "runs"}
    assert set(report["machine"]) == {"cpu", "cores", "python", "torch", "torchvision", "timm", "device", "threads"}
    assert report["machine"]["device"] == "cpu" and report["runs"] == measured["runs"]
    rows = targets(report)
    assert [row[:2] for row in rows] == [
        ["inception_v1_bn", "ours/peer throughput >= 1.0"],
        ["inception_v1_bn", "deploy/peer throughput >= 1.2"],
        ["inception_v1_bn", "deploy >= 60% of matmul rate"],
    ]
    printed = capsys.readouterr().out
    assert "| fp32" in printed and "| inception_v1_bn | deploy/peer throughput >= 1.2 |" in printed
    text = md.read_text()
    command = "Command: `python benchmarks/compare.py --models inception_v1_bn --repeats 2 --latency-iters 1"
    assert command in text
    assert "# Benchmarks" in text and "matrix-multiply rate" in text and "inception_v1_bn" in text
    assert f"- cpu: {report['machine']['cpu']}" in text and f"- cores: {report['machine']['cores']}" in text
    assert "## Targets (CPU, fp32, batch 8, channels_last)" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--sample-seconds", "inf"], "must be a positive, finite number of seconds, got inf"),
    (["--batch-size", "abc"], "must be a positive integer, got 'abc'"),
    (["--repeats", "0"], "must be a positive integer, got 0"),
    (["--markdown", "report.md"], "unrecognized arguments: --markdown report.md"),  # benchmarks/compare.py's
])
def test_bench_option_errors_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


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


def test_targets_rows_show_median_per_repeat_range_and_ceiling():
    def result(times, **extra):
        return {"samples": {"throughput": times}, "matmul_fraction": 0.9, **extra}

    entry = {
        "model": "inception_v3",
        "results": {"ours": result([100.0, 110.0]), "deploy": result([80.0, 90.0]), "peer": result([105.0, 99.0])},
        "ratios": {"ours/peer": {"throughput": 0.97}, "deploy/peer": {"throughput": 1.22, "ceiling": 1.3}},
    }
    report = {"machine": {"device": "cpu"}, "settings": {"batch_size": 8, "channels_last": True},
              "runs": [{"dtype": "fp32", "models": [entry]}, {"dtype": "bf16", "models": [entry]}]}
    rows = targets(report)
    assert rows == [  # fp32 only; per repeat: 105/100, 99/110 and 105/80, 99/90
        ["inception_v3", "ours/peer throughput >= 1.0", "0.97", "0.90-1.05", "**no**", "-"],
        ["inception_v3", "deploy/peer throughput >= 1.2", "1.22", "1.10-1.31", "yes", "1.30"],
        ["inception_v3", "deploy >= 60% of matmul rate", "90%", "-", "yes", "-"],
    ]
    report["settings"]["batch_size"] = 4
    assert targets(report) == []  # the targets are defined at batch 8
