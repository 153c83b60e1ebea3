"""Times PyTorch training steps the way ``gradlab bench`` times gradlab's.

One step: ``zero_grad(set_to_none=True)``, forward, cross-entropy, backward,
SGD update (lr 0.01, momentum 0.9, weight decay 5e-4), on random N(0, 1)
images and random labels; ``--warmup`` untimed steps, then ``--steps`` timed
ones. Prints one JSON object: every step's milliseconds, the median, the
peak resident memory of the process (``ru_maxrss``, the interpreter and
libraries included) and the versions.

    OMP_NUM_THREADS=2 python torch_step.py --model resnet:depth=20 --batch 128
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = torch_models.build(a.model)
    params = torch_models.num_params(model)
    expected = torch_models.PARAMS[a.model]
    if params != expected:
        sys.exit(f"{a.model}: {params} parameters, gradlab's network has {expected}")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(a.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (a.batch,))

    times = []
    loss = float("nan")
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = F.cross_entropy(model(images), labels)
        out.backward()
        opt.step()
        loss = out.item()
        t1 = time.perf_counter()
        if step >= a.warmup:
            times.append((t1 - t0) * 1e3)
    print(
        json.dumps(
            {
                "peer": "pytorch",
                "model": a.model,
                "batch": a.batch,
                "parameters": params,
                "threads": torch.get_num_threads(),
                "step_ms": times,
                "ms_per_step": statistics.median(times),
                "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "last_loss": loss,
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            }
        )
    )


if __name__ == "__main__":
    main()
