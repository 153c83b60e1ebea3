"""Runs gradlab and PyTorch side by side, alternately, and prints the ratio
of their median times per case.

Each round runs every case as gradlab then PyTorch (A B), at 2 threads each
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``RAYON_NUM_THREADS``); the timed
steps or calls of all rounds are pooled per side and case, and the ratio is
gradlab's median over PyTorch's (below 1: gradlab is faster). The per-round
ratios are printed beside it to show the spread.

Cases: one SGD training step (momentum 0.9, weight decay 5e-4) of ResNet-20,
plain-20, ResNet-56 and the small MobileNet at batch 128 on 3x32x32, of
ResNet-20 at batch 1, and the seven convolution layers of the conv bench
(batch 64), forward and forward+backward.

Usually started by ``compare.sh PYTHON``, which builds gradlab first; this
file needs only the standard library, the PyTorch scripts it starts need
``torch``:

    python compare.py --python ~/torchenv/bin/python \\
        --gradlab target/release/gradlab --peer-conv target/release/examples/peer_conv
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

STEP_CASES = [
    # label, model, batch, timed steps
    ("ResNet-20, batch 128", "resnet:depth=20", 128, 10),
    ("plain-20, batch 128", "plain-resnet:depth=20", 128, 10),
    ("ResNet-56, batch 128", "resnet:depth=56", 128, 6),
    ("MobileNet, batch 128", "mobilenet", 128, 10),
    ("ResNet-20, batch 1", "resnet:depth=20", 1, 40),
]


def cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    ext = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni") if f in flags]
    return model, ext


def load():
    try:
        return os.getloadavg()
    except OSError:
        return None


def run_json_lines(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def gradlab_step(args, env, model, batch, steps):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [args.gradlab, "bench", "--model", model, "--batch", str(batch),
               "--steps", str(steps), "--warmup", str(args.warmup), "--json", f.name]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        with open(f.name) as r:
            return json.load(r)


def torch_step(args, env, model, batch, steps):
    cmd = [args.python, os.path.join(HERE, "torch_step.py"), "--model", model,
           "--batch", str(batch), "--steps", str(steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]
    return run_json_lines(cmd, env)[-1]


def conv_runs(args, env):
    warm = str(args.conv_warmup)
    g = run_json_lines([args.peer_conv, "--warmup", warm, "--reps", str(args.conv_reps)], env)
    t = run_json_lines([args.python, os.path.join(HERE, "torch_conv.py"), "--warmup", warm,
                        "--reps", str(args.conv_reps), "--threads", str(args.threads)], env)
    return g, t


def mib(b):
    return f"{b / 2**20:.0f} MiB" if b else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="interpreter with torch")
    p.add_argument("--gradlab", required=True, help="the gradlab binary (release build)")
    p.add_argument("--peer-conv", required=True, help="the peer_conv example binary")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--conv-reps", type=int, default=20)
    p.add_argument("--conv-warmup", type=int, default=3,
                   help="untimed calls before the timed ones, per layer and pass, both peers")
    p.add_argument("--only", choices=["steps", "conv"], help="run one half only")
    p.add_argument("--json", help="also write every measurement here")
    args = p.parse_args()

    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[k] = str(args.threads)
    model, ext = cpu_info()
    versions = subprocess.run(
        [args.python, "-c", "import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())"],
        env=env, check=True, capture_output=True, text=True).stdout.strip()
    print(f"CPU: {model}; {os.cpu_count()} logical CPUs; flags: {' '.join(ext) or 'none of avx2/avx512f'}")
    print(f"PyTorch {versions} (version, CPU capability); {args.threads} threads each; {args.rounds} rounds")
    print(f"load average at start: {load()}")
    sys.stdout.flush()

    steps = {label: {"g": [], "t": [], "rounds": [], "g_mem": 0, "t_mem": 0} for label, *_ in STEP_CASES}
    convs = {}
    for r in range(args.rounds):
        if args.only != "conv":
            for label, model_spec, batch, n in STEP_CASES:
                g = gradlab_step(args, env, model_spec, batch, n)
                t = torch_step(args, env, model_spec, batch, n)
                s = steps[label]
                s["g"] += g["step_ms"]
                s["t"] += t["step_ms"]
                s["rounds"].append(g["ms_per_step"] / t["ms_per_step"])
                s["g_mem"] = max(s["g_mem"], g.get("peak_memory_bytes") or 0)
                s["t_mem"] = max(s["t_mem"], t.get("peak_memory_bytes") or 0)
                print(f"round {r + 1}: {label}: gradlab {g['ms_per_step']:.1f} ms, "
                      f"PyTorch {t['ms_per_step']:.1f} ms, load {load()}", flush=True)
        if args.only != "steps":
            g, t = conv_runs(args, env)
            for side, rows in (("g", g), ("t", t)):
                for row in rows:
                    c = convs.setdefault((row["layer"], row["pass"]), {"g": [], "t": [], "gr": [], "tr": []})
                    c[side] += row["ms"]
                    c[side + "r"].append(row["median_ms"])
            print(f"round {r + 1}: conv layers done, load {load()}", flush=True)

    print(f"\nload average at end: {load()}\n")
    if args.only != "conv":
        print("| case | gradlab ms (median) | PyTorch ms (median) | ratio | per-round ratios | gradlab peak RSS | PyTorch peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for label, s in steps.items():
            gm, tm = statistics.median(s["g"]), statistics.median(s["t"])
            rr = ", ".join(f"{x:.2f}" for x in s["rounds"])
            print(f"| {label} | {gm:.1f} | {tm:.1f} | **{gm / tm:.2f}** | {rr} | {mib(s['g_mem'])} | {mib(s['t_mem'])} |")
        print()
    if args.only != "steps":
        print("| layer | pass | gradlab ms (median) | PyTorch ms (median) | ratio | per-round ratios |")
        print("|---|---|---|---|---|---|")
        for (layer, pas), c in convs.items():
            gm, tm = statistics.median(c["g"]), statistics.median(c["t"])
            rr = ", ".join(f"{a / b:.2f}" for a, b in zip(c["gr"], c["tr"]))
            print(f"| {layer} | {pas} | {gm:.2f} | {tm:.2f} | **{gm / tm:.2f}** | {rr} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": model, "flags": ext, "torch": versions,
                       "steps": steps, "conv": {f"{k[0]}/{k[1]}": v for k, v in convs.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
