"""optimize_for_inference's runtime backends (ONNX Runtime, OpenVINO) and the measured default backend."""

import copy
import importlib.util
import io
import pickle
import threading

import pytest
import torch

from inception_zoo import create_model, get_record, optimize_for_inference
from inception_zoo.deploy import (
    DeployedInceptionNet, OnnxRuntimeModel, OpenVINOModel, RuntimeModel, available_backends, runtime_model, to_onnx,
)
from inception_zoo.deploy import model as deploy_model

from helpers import close, models_without_twins, realistic

pytest.importorskip("onnx")
RUNTIMES = {"onnxruntime": OnnxRuntimeModel, "openvino": OpenVINOModel}
# Both compute in float32 with their own kernels (other summation orders than oneDNN's): measured max relative
# deviations are about 1e-6 on every model; 1e-4 relative is the bound for a backend.
TOLERANCE = {"onnxruntime": 1e-4, "openvino": 1e-4}
_GRAPHS: dict = {}


def _needs(backend):
    pytest.importorskip(backend)


def _graph(name):
    """(realistic model, its ONNX bytes as optimize_for_inference exports them for a runtime): one export
    per model shared by both runtimes."""
    if name not in _GRAPHS:
        torch.manual_seed(0)
        model = realistic(create_model(name))
        _GRAPHS[name] = model, to_onnx(model, model.default_cfg["input_size"])
    return _GRAPHS[name]


def _runtime(name, backend):
    model, graph = _graph(name)
    return model, RUNTIMES[backend](graph, name=model.name, in_chans=model.in_chans, min_size=model._min_size,
                                    num_classes=model.num_classes, default_cfg=model.default_cfg)


def _x(name, batch=2):
    """Not the export's size (height and width are dynamic), small enough to be quick."""
    record = get_record(name)
    (_, min_h, min_w), (_, h, w) = record.min_input_size, record.input_size
    return torch.randn(batch, 3, max(min_h, min(h + 8, 80)), max(min_w, min(w + 4, 96)))


@pytest.mark.parametrize("backend", RUNTIMES)
@pytest.mark.parametrize("name", models_without_twins())
def test_backend_reproduces_the_logits(name, backend):
    _needs(backend)
    model, runtime = _runtime(name, backend)
    for batch in (1, 3):  # any batch
        x = _x(name, batch)
        with torch.no_grad():
            expected = model(x)
        out = runtime(x)
        assert out.shape == expected.shape and out.dtype == torch.float32
        assert close(out, expected, TOLERANCE[backend])


@pytest.mark.parametrize("backend", ["torch", *RUNTIMES])
def test_optimize_for_inference_by_backend_name(backend):
    if backend != "torch":
        _needs(backend)
    model = realistic(create_model("inception_v1_bn"))
    out = optimize_for_inference(model, backend)
    assert isinstance(out, DeployedInceptionNet if backend == "torch" else RUNTIMES[backend])
    assert out.default_cfg["architecture"] == "inception_v1_bn" and not out.training
    x = torch.randn(2, 3, 64, 72)
    with torch.no_grad():
        assert close(out(x), model(x), TOLERANCE.get(backend, 1e-4))


def _bad_inputs():
    return {
        "wrong channels": torch.randn(1, 4, 96, 96),
        "too small": torch.randn(1, 3, 40, 40),
        "3-D": torch.randn(3, 96, 96),
        "float64": torch.randn(1, 3, 96, 96, dtype=torch.float64),
        "uint8": torch.zeros(1, 3, 96, 96, dtype=torch.uint8),
        "not a tensor": [[0.0]],
    }


@pytest.mark.parametrize("backend", RUNTIMES)
def test_bad_input_gives_the_eager_models_error(backend):
    _needs(backend)
    model, runtime = _runtime("inception_v3", backend)
    for what, x in _bad_inputs().items():
        with pytest.raises(ValueError) as eager:
            model(x)
        with pytest.raises(ValueError) as ours:
            runtime(x)
        assert str(ours.value) == str(eager.value), what


@pytest.mark.parametrize("backend", RUNTIMES)
def test_limits_are_stated_errors(backend):
    _needs(backend)
    _, runtime = _runtime("inception_v1_bn", backend)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    with pytest.raises(ValueError, match="no autograd"):
        runtime(x)
    with torch.no_grad():  # no gradient recorded: fine
        runtime(x)
    with pytest.raises(RuntimeError, match="cannot be trained"):
        runtime.train()
    with pytest.raises(ValueError, match="cannot be converted to torch.float16"):
        runtime.half()
    with pytest.raises(ValueError, match="cannot be moved to meta"):
        runtime.to("meta")
    assert runtime.eval() is runtime and runtime.to("cpu") is runtime and runtime.state_dict() == {}
    empty = runtime(torch.randn(0, 3, 64, 64))  # an empty batch, as the eager model takes it
    assert empty.shape == (0, 1000) and empty.dtype == torch.float32


@pytest.mark.parametrize("backend", RUNTIMES)
def test_half_precision_input_under_autocast_and_inference_mode(backend):
    _needs(backend)
    model, runtime = _runtime("inception_v1_bn", backend)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        plain = runtime(x)
        assert close(plain, model(x), TOLERANCE[backend])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(runtime(x.bfloat16()), runtime(x.bfloat16().float()))


@pytest.mark.parametrize("backend", RUNTIMES)
def test_pickle_deepcopy_and_torch_save_rebuild_the_runtime(backend):
    _needs(backend)
    _, runtime = _runtime("inception_v1_cifar", backend)  # the smallest graph: each copy compiles it again
    x = torch.randn(2, 3, 32, 32)
    expected = runtime(x)
    buffer = io.BytesIO()
    torch.save(runtime, buffer)
    buffer.seek(0)
    for copy_ in (pickle.loads(pickle.dumps(runtime)), copy.deepcopy(runtime), torch.load(buffer, weights_only=False)):
        assert type(copy_) is type(runtime) and copy_.name == runtime.name
        assert torch.equal(copy_(x), expected)


@pytest.mark.parametrize("backend", RUNTIMES)
def test_one_runtime_model_serves_many_threads(backend):
    _needs(backend)
    _, runtime = _runtime("inception_v1_bn", backend)
    inputs = [torch.randn(b, 3, 64, 64 + 8 * b) for b in (1, 2, 3)]
    expected = [runtime(x) for x in inputs]
    failures = []

    def serve(k):
        for i in range(6):
            j = (k + i) % len(inputs)
            if not torch.equal(runtime(inputs[j]), expected[j]):
                failures.append((k, i))

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_a_foreign_classifier_needs_its_input_size():
    _needs("onnxruntime")
    peer = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    with pytest.raises(ValueError, match="input_size"):
        runtime_model(peer, "onnxruntime")
    runtime = runtime_model(peer, "onnxruntime", input_size=(3, 16, 16))
    x = torch.randn(2, 3, 20, 20)
    with torch.no_grad():
        assert close(runtime(x), peer(x))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        runtime(torch.randn(2, 5, 20, 20))


def test_auto_returns_the_backend_measured_fastest(monkeypatch):
    deploy_model._CHOICES.clear()
    measured = []

    def fake_timing(models, x):  # the measurement itself is timing: replaced by fixed figures here
        measured.append((sorted(models), tuple(x.shape)))
        return {b: 10.0 + i for i, b in enumerate(reversed(list(models)))}  # the last candidate "fastest"

    monkeypatch.setattr(deploy_model, "time_backends", fake_timing)
    real_build, builds = deploy_model._build, []

    def counted_build(model, backend, threads, options):  # the runtimes' builds are tested above; skip OpenVINO's
        builds.append(backend)               # compilation after the first round (seconds each on 2 cores)
        if backend == "openvino" and builds.count("openvino") > 1:
            return torch.nn.Identity()
        return real_build(model, backend, threads, options)

    monkeypatch.setattr(deploy_model, "_build", counted_build)
    model = create_model("inception_v1_cifar").eval()
    candidates = available_backends()
    chosen = optimize_for_inference(model, batch_size=4)
    assert measured == [(sorted(candidates), (4, 3, 32, 32))] and builds == candidates
    expected = candidates[-1]
    assert (type(chosen) is DeployedInceptionNet) == (expected == "torch")
    assert chosen.backend == expected and min(chosen.backend_times_ms, key=chosen.backend_times_ms.get) == expected
    again = optimize_for_inference(model, batch_size=4)  # remembered: only the choice built, not measured again
    assert len(measured) == 1 and builds == [*candidates, expected]
    assert again.backend_times_ms == chosen.backend_times_ms
    optimize_for_inference(model, batch_size=1)  # another batch size is measured anew
    assert len(measured) == 2


def test_time_backends_reports_medians_of_every_model():
    slow = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(8)]).eval()
    fast = torch.nn.Identity()
    times = deploy_model.time_backends({"slow": slow, "fast": fast}, torch.randn(1, 3, 64, 64), rounds=3)
    assert set(times) == {"slow", "fast"} and all(t > 0 for t in times.values())


def test_bad_backend_and_batch_size_and_missing_runtime(monkeypatch):
    model = create_model("inception_v1_bn").eval()
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        optimize_for_inference(model, "tensorrt")
    with pytest.raises(ValueError, match="batch_size"):
        optimize_for_inference(model, batch_size=0)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert "openvino" not in available_backends()
    with pytest.raises(ImportError, match=r"pip install \"inception_zoo\[deploy\]\""):
        optimize_for_inference(model, "openvino")


def test_auto_skips_a_backend_that_fails_and_half_models_stay_in_torch(monkeypatch):
    """A runtime that looks installed but fails to import or build is skipped with a warning; a float16
    model has the torch backend only (nothing to time), and a runtime asked for by name says float32."""
    deploy_model._CHOICES.clear()
    real = deploy_model.runtime_model

    def broken(model, backend, **kw):
        if backend == "openvino":
            raise ImportError("libopenvino.so: cannot open shared object file")
        return real(model, backend, **kw)

    monkeypatch.setattr(deploy_model, "runtime_model", broken)
    monkeypatch.setattr(deploy_model, "time_backends", lambda models, x: {b: float(len(b)) for b in models})
    monkeypatch.setattr(deploy_model, "available_backends", lambda: ["torch", "onnxruntime", "openvino"])
    model = create_model("inception_v1_cifar").eval()
    with pytest.warns(RuntimeWarning, match="'openvino' skipped.*libopenvino"):
        chosen = optimize_for_inference(model)
    assert set(chosen.backend_times_ms) == {"torch", "onnxruntime"} and chosen.backend == "torch"
    half = create_model("inception_v1_cifar").eval().half()
    assert type(optimize_for_inference(half)) is DeployedInceptionNet
    with pytest.raises(ValueError, match=r"torch.float16 on cpu weights; backend='onnxruntime' runs float32"):
        optimize_for_inference(half, "onnxruntime")


def test_auto_gives_each_runtime_its_own_options(monkeypatch):
    deploy_model._CHOICES.clear()
    given = {}

    def record(model, backend, threads=None, options=None):
        given[backend] = options
        return torch.nn.Identity()

    monkeypatch.setattr(deploy_model, "runtime_model", record)
    monkeypatch.setattr(deploy_model, "available_backends", lambda: ["torch", "onnxruntime", "openvino"])
    monkeypatch.setattr(deploy_model, "time_backends", lambda models, x: {b: 1.0 for b in models})
    spin = {"session.intra_op.allow_spinning": "0"}
    optimize_for_inference(create_model("inception_v1_cifar").eval(), options={"onnxruntime": spin})
    assert given == {"onnxruntime": spin, "openvino": None}
    optimize_for_inference(create_model("inception_v1_cifar").eval(), "onnxruntime", options={"onnxruntime": spin})
    assert given["onnxruntime"] == spin


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_threads_must_be_a_positive_integer(threads):
    model = create_model("inception_v1_cifar").eval()
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        optimize_for_inference(model, "onnxruntime", threads=threads)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        optimize_for_inference(model, batch_size=True)


def test_runtime_options_reach_the_runtime_and_survive_pickling():
    """options are the runtime's own settings: an ONNX Runtime session config entry, an OpenVINO property;
    they are kept through pickling, and one the runtime refuses is a ValueError naming them."""
    model = create_model("inception_v1_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    cases = {"onnxruntime": ({"session.intra_op.allow_spinning": "0"},
                             lambda rt: rt.get_session_options().get_session_config_entry(
                                 "session.intra_op.allow_spinning") == "0"),
             "openvino": ({"PERFORMANCE_HINT": "THROUGHPUT"},
                          lambda rt: str(rt.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT"))}
    for backend, (options, applied) in cases.items():
        if importlib.util.find_spec(backend) is None:
            continue
        runtime = optimize_for_inference(model, backend, options=options)
        assert applied(runtime._runtime) and close(runtime(x), expected, TOLERANCE[backend])
        assert f"options={options!r}" in repr(runtime)
        if backend == "onnxruntime":  # (one rebuild is enough: OpenVINO's compilation takes seconds)
            assert applied(pickle.loads(pickle.dumps(runtime))._runtime)
    with pytest.raises(ValueError, match="options must be a dict"):
        optimize_for_inference(model, "onnxruntime", options=["session.intra_op.allow_spinning"])
    with pytest.raises(ValueError, match="session config values are strings"):
        optimize_for_inference(model, "onnxruntime", options={"session.intra_op.allow_spinning": True})
    with pytest.raises(ValueError, match="'INFERENCE_NUM_THREADS' is set by inception_zoo \\(threads=\\)"):
        optimize_for_inference(model, "openvino", options={"INFERENCE_NUM_THREADS": 1})
    with pytest.raises(ValueError, match="with backend='auto', give options per runtime"):
        optimize_for_inference(model, options={"session.intra_op.allow_spinning": "0"})
    if importlib.util.find_spec("openvino"):
        with pytest.raises(ValueError, match=r"openvino refused options=\{'NO_SUCH_PROPERTY': 1\}"):
            optimize_for_inference(model, "openvino", options={"NO_SUCH_PROPERTY": 1})


def test_runtime_model_is_a_runtime_model():
    assert issubclass(OnnxRuntimeModel, RuntimeModel) and issubclass(OpenVINOModel, RuntimeModel)
