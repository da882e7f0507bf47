"""Benchmark: the oracle check's own cost (the oracle and its bound) in NumPy and in torch, per size.

    python benchmarks/oracle_device.py             # on the CPU, one thread
    python benchmarks/oracle_device.py --device cuda

For attention, multi-head attention and the encoder layer at growing sequence lengths: the seconds
the float64 oracle and the tolerance rule's bound (baseline and one sample of rounded arithmetic)
take in NumPy (spec/oracle.py) and in torch on the device (properties/engine/device_oracle.py). Where
torch is faster, device_oracle.ON_DEVICE_PAST sends cases of that size to it. Best of 3.
"""
import argparse
import time

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from nlpspec.properties.engine import device_oracle
from nlpspec.properties.engine.harness import Harness, Run
from nlpspec.properties.suite import COMPONENTS
from nlpspec.subjects.registry import load_subject


class Fixed:
    """Hypothesis's data, but each size (and the magnitude, the masks' density, …) as given."""

    def __init__(self, data, **values):
        self.data, self.values = data, values

    def draw(self, strategy, label=None):
        fixed = {"magnitude": 2.0, "past exp's overflow": False, "self-attention": True} | self.values
        return fixed[label] if label in fixed else self.data.draw(strategy, label=label)


def drawn(h, sizes: dict):
    """A case of `h`'s component at these sizes, drawn by its own strategy."""
    found = []

    @settings(max_examples=1, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        found.append(h.draw(Fixed(data, **sizes)))
    draw()
    return found[0]


SIZES = {
    "attention": [dict(B=1, n=n, m=n, d_k=64, d_v=64) for n in (128, 512, 1024, 2048, 4096)],
    "mha": [dict(B=1, h=8, d_k=64, n=n) for n in (128, 512, 1024, 2048)],
    "encoder.layer": [dict(B=1, n=n, h=8, d_k=64, d_ff=2048) for n in (128, 512, 1024)],
}


def seconds(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def oracle_and_bound(h, params, inputs):
    reference = h.reference(params, inputs)
    return h.bounds(params, inputs, reference)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float64", "float32", "bfloat16", "float16"))
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.set_num_threads(1)
    subject = load_subject("reference")
    print(f"{'component':<14} {'sizes':<40} {'entries':>9} {'NumPy':>8} {'torch':>8} {'NumPy/torch':>11}")
    with threadpool_limits(1):
        for name, sizes in SIZES.items():
            h = Harness(Run(subject, device, dtype), COMPONENTS[name])  # sizes as given, unclamped
            for size in sizes:
                params, inputs = drawn(h, size)
                entries = sum(a.size for _, a in device_oracle.leaves([params, inputs]) if a.dtype.kind == "f")
                found, chosen = {}, device_oracle.ON_DEVICE_PAST.get(device.type)
                for way, past in (("NumPy", None), ("torch", 0)):
                    device_oracle.ON_DEVICE_PAST[device.type] = past
                    try:
                        found[way] = seconds(lambda: oracle_and_bound(h, params, inputs))
                    finally:
                        device_oracle.ON_DEVICE_PAST[device.type] = chosen
                shown = ", ".join(f"{k}={v}" for k, v in size.items())
                print(f"{name:<14} {shown:<40} {entries:>9} {found['NumPy']:>7.3f}s {found['torch']:>7.3f}s "
                      f"{found['NumPy'] / found['torch']:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
