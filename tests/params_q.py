#!/usr/bin/env python3
"""params_q.py -- rebuild one run's Q-networks from a results folder's params.npy and params.json
with numpy alone, as a user would (docs/params-format.md), and print Q(x, .) of every head.

    params_q.py DIR RUN INPUT

INPUT: a state index (params.json "input": "index") or comma-separated observation floats
("input": "dense"). Prints one line per head k < the run's heads: Q_k(x, a) for every action,
computed in float64 from the float32 parameters (the reference the C++ test compares qfleet to).
Used by tests/test_eval.cc (Params.NumpyRebuildsQValues)."""
import json
import sys

import numpy as np


def main():
    folder, run, given = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(folder + "/params.json") as f:
        lay = json.load(f)
    params = np.load(folder + "/" + lay["npy"])
    assert params.dtype == np.float32 and list(params.shape) == lay["shape"], (params.dtype, params.shape)
    row = params[run].astype(np.float64)
    P = lay["network_floats"]
    nets = {n["kind"]: n for n in lay["networks"]}
    act = {"relu": lambda z: np.maximum(z, 0.0),
           "gelu": lambda z: 0.5 * z * (1.0 + np.vectorize(__import__("math").erf)(z / np.sqrt(2.0)))}[lay["activation"]]
    layers = lay["layers"]

    def forward(block):
        if lay["input"] == "index":
            x = None
            s = int(given)
        else:
            x = np.array([float(v) for v in given.split(",")], dtype=np.float64)
        for i, l in enumerate(layers):
            w = block[l["weight_offset"]:l["weight_offset"] + l["weight_shape"][0] * l["weight_shape"][1]]
            w = w.reshape(l["weight_shape"])
            b = block[l["bias_offset"]:l["bias_offset"] + l["bias_shape"][0]]
            y = (w[s] if (i == 0 and x is None) else x @ w) + b
            x = y if i == len(layers) - 1 else act(y)
        return x

    info = lay["runs"][run]
    for k in range(info["heads"]):
        q = forward(row[nets["q"]["offset"] + k * P: nets["q"]["offset"] + (k + 1) * P])
        if "prior" in nets and info["prior_scale"] != 0:
            q = q + info["prior_scale"] * forward(row[nets["prior"]["offset"] + k * P: nets["prior"]["offset"] + (k + 1) * P])
        print(" ".join("%.17g" % v for v in q))


if __name__ == "__main__":
    main()
