"""Silence on correct code, measured: how close a correct subject's error comes to its tolerance.

For random cases of the oracle check (or, with --check gradient, of the gradient check: the subject's
vector-Jacobian products against the spec's), the ratio max|subject - oracle| / tolerance over every
output (a false alarm is a ratio above 1), against the bound from all
the rule's samples of rounded arithmetic (the one a failing verdict rests on). Prints, per component and option set, the largest
ratio seen and how many cases came above 1/4 and 1/2.

    python benchmarks/margin.py --subject torch --dtype bfloat16 --examples 500 decoder encoder
    python benchmarks/margin.py --check gradient --subject torch --dtype float64 mha attention
"""
import argparse

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from nlpspec.properties.engine import tolerance as tol
from nlpspec.properties.engine.harness import Harness, Run
from nlpspec.properties.gradient_check import gradient_case
from nlpspec.properties.suite import COMPONENTS
from nlpspec.subjects import load_subject
from nlpspec.subjects.protocol import option_sets

parser = argparse.ArgumentParser()
parser.add_argument("components", nargs="+")
parser.add_argument("--subject", default="torch")
parser.add_argument("--dtype", default="float32")
parser.add_argument("--examples", type=int, default=200)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--check", default="oracle", choices=("oracle", "gradient"))
args = parser.parse_args()
subject, dtype = load_subject(args.subject), getattr(torch, args.dtype)

print(f"{'component':<16} {'options':<18} {'cases':>6} {'max ratio':>10} {'> 1/4':>6} {'> 1/2':>6}  worst case")
for name in args.components:
    component = COMPONENTS[name]
    for options in option_sets(subject, component):
        h = Harness(Run(subject, torch.device("cpu"), dtype, options), component)
        if h.declaration.not_run(dtype, torch.device("cpu")):  # declared for another device or dtype
            continue
        ratios, worst = [], [0.0, ""]

        @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def sample(data):
            h.begin_example()
            if args.check == "gradient":
                found = gradient_case(h, data)
                if found is None:
                    return
                inputs, actual, reference, bounds = found.inputs, found.subject, found.expected, found.bounds
            else:
                params, inputs = h.draw(data)
                reference = h.reference(params, inputs)
                actual = h.call(h.build(params), inputs, reference)
                bounds = h.tolerances(params, inputs, reference)
            bounds = {k: b.final() for k, b in bounds.items()}  # all samples
            ratio, worst_output = max((tol.max_abs_diff(actual[k], reference[k]) / bounds[k].atol, k) for k in actual)
            ratios.append(ratio)
            if ratio > worst[0]:
                shapes = {k: v.shape for k, v in inputs.items()}
                worst[:] = [ratio, f"{shapes} {worst_output}: {bounds[worst_output].describe().split(' [')[0]}"]

        seed(args.seed)(sample)()
        r = np.array(ratios)
        opts = ",".join(f"{k}={v}" for k, v in options.items())
        if not r.size:
            print(f"{name:<16} {opts:<18} {0:>6}  no case judged: {', '.join(sorted(h.observations))}")
            continue
        print(f"{name:<16} {opts:<18} {len(r):>6} {r.max():>10.3f} {(r > .25).sum():>6} {(r > .5).sum():>6}  {worst[1]}")
