"""Times PyTorch on the seven convolution layers of gradlab's conv bench
(``benches/benches/conv.rs``), batch 64, f32, padding 1 (none for the 1x1):

- ``forward``: ``F.conv2d(x, w, b)``;
- ``forward_backward``: the same, then ``y.backward(dy)`` with input, weight
  and bias requiring gradients (the three gradients ``conv2d_backward``
  returns).

Each (layer, pass) runs ``--warmup`` untimed calls then ``--reps`` timed
ones; prints one JSON object per line with every call's milliseconds, the
same protocol as ``cargo run --release -p gradlab-benches --example
peer_conv``.

    OMP_NUM_THREADS=2 python torch_conv.py
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

BATCH = 64

# name, in, out, kernel, stride, groups, image size
LAYERS = [
    ("a_3x3_16-16_32x32", 16, 16, 3, 1, 1, 32),
    ("b_3x3_32-32_16x16", 32, 32, 3, 1, 1, 16),
    ("c_3x3_64-64_8x8", 64, 64, 3, 1, 1, 8),
    ("d_3x3_16-32_s2_32x32", 16, 32, 3, 2, 1, 32),
    ("e_1x1_64-128_16x16", 64, 128, 1, 1, 1, 16),
    ("f_dw3x3_128_16x16", 128, 128, 3, 1, 128, 16),
    ("g_dw3x3_256_8x8", 256, 256, 3, 1, 256, 8),
]


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name, cin, cout, k, stride, groups, hw in LAYERS:
        pad = k // 2
        x = torch.randn(BATCH, cin, hw, hw)
        w = torch.randn(cout, cin // groups, k, k)
        b = torch.zeros(cout)
        with torch.no_grad():
            oh = F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups).shape[2]
        dy = torch.randn(BATCH, cout, oh, oh)

        def forward():
            with torch.no_grad():
                return F.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)

        xg = x.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)
        bg = b.clone().requires_grad_(True)

        def forward_backward():
            xg.grad = wg.grad = bg.grad = None
            y = F.conv2d(xg, wg, bg, stride=stride, padding=pad, groups=groups)
            y.backward(dy)

        for pass_name, fn in [("forward", forward), ("forward_backward", forward_backward)]:
            ms = timed(fn, a.warmup, a.reps)
            print(
                json.dumps(
                    {
                        "peer": "pytorch",
                        "layer": name,
                        "pass": pass_name,
                        "ms": ms,
                        "median_ms": statistics.median(ms),
                        "torch": torch.__version__,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
