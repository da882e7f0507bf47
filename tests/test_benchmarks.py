"""The benchmarks still run (at toy sizes, timings not taken): a benchmark is code users run too."""
import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.selftest

BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"
TOY = {"oracle": {"B": 2, "T": 3, "H": 4, "D_MODEL": 8, "HEADS": 2},
       "transformer": {"B": 2, "T": 3, "D": 8, "HEADS": 2, "FF": 8, "LAYERS": 2, "V": 5}}


@pytest.mark.parametrize("name", sorted(TOY))
def test_benchmark_runs(name, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for constant, value in TOY[name].items():
        monkeypatch.setattr(module, constant, value)
    monkeypatch.setattr(module, "best", lambda fn, repeat=1: (fn(), 1.0)[1])  # run once, no timing
    monkeypatch.setattr("sys.argv", [name])
    module.main()  # compares the oracle with the hand-written NumPy on the way
    assert "oracle" in capsys.readouterr().out


def test_the_device_benchmark_runs(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_oracle_device", BENCHMARKS / "oracle_device.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SIZES", {"attention": [dict(B=1, n=3, m=2, d_k=2, d_v=2)],
                                          "encoder.layer": [dict(B=1, n=2, h=2, d_k=1, d_ff=2)]})
    monkeypatch.setattr(module, "seconds", lambda fn, repeat=1: (fn(), 1.0)[1])  # run once, no timing
    monkeypatch.setitem(module.device_oracle.ON_DEVICE_PAST, "cpu", None)
    monkeypatch.setattr("sys.argv", ["oracle_device"])
    module.main()
    out = capsys.readouterr().out
    assert "attention" in out and "encoder.layer" in out
