"""Writes the PyTorch fixture histories that crates/diag/tests/torch_fixtures.rs
diagnoses: two real PyTorch runs on the embedded digits (8x8, 10 classes),
recorded with gradlab_torch.HistoryRecorder.

- torch_sigmoid_mlp.jsonl: a plain sigmoid MLP, 12 linear layers of 32, at
  PyTorch's default initialisation: gradients vanish towards the input
  (expected verdict: vanishing).
- torch_cnn.jsonl: a small ReLU CNN (two 3x3 convolutions, max-pooling, a
  linear head) that learns the digits (expected verdict: healthy).

Run from the repository root (needs torch and numpy):

    python3 python/make_torch_fixtures.py [OUT_DIR]

OUT_DIR defaults to crates/diag/tests/fixtures.
"""

import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gradlab_torch import HistoryRecorder  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "crates", "data", "assets", "digits.csv.gz")


def digits():
    """(x [N, 64] standardised with the training split's statistics, y [N]),
    split 80/20 by a seeded permutation."""
    with gzip.open(DIGITS, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = rows[:, :64] / 16.0, rows[:, 64].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    tr, va = order[:cut], order[cut:]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return (torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
            torch.from_numpy(x[va]), torch.from_numpy(y[va]))


class SigmoidMlp(nn.Module):
    def __init__(self, depth=12, width=32):
        super().__init__()
        sizes = [64] + [width] * (depth - 1) + [10]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.sigmoid(x)
        return x


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = x.reshape(x.shape[0], 1, 8, 8)
        x = self.relu1(self.conv1(x))
        x = F.max_pool2d(self.relu2(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def train(path, model, positions, activation, name, steps=150, lr=0.05):
    torch.manual_seed(0)
    xt, yt, xv, yv = digits()
    counts = np.bincount(yt.numpy(), minlength=10)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    batch = 32
    rec = HistoryRecorder(path, model, positions=positions, num_classes=10,
                          class_counts=counts, activation=activation, model_name=name,
                          data="digits 8x8 (80/20 split, seed 0)", batch_size=batch)
    for step in range(steps):
        idx = torch.randint(0, len(yt), (batch,), generator=gen)
        x, y = xt[idx], yt[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        rec.step(loss, batch_size=batch, accuracy=(logits.argmax(1) == y).float().mean())
        opt.step()
        if (step + 1) % (steps // 4) == 0:
            tl, ta = evaluate(model, xt, yt)
            vl, va = evaluate(model, xv, yv)
            rec.check(train_loss=tl, train_accuracy=ta, val_loss=vl, val_accuracy=va,
                      val_examples=len(yv))
    rec.close()
    print(f"wrote {path}: last loss {loss.item():.3f}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates", "diag", "tests",
                                                             "fixtures")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    mlp = SigmoidMlp()
    train(os.path.join(out, "torch_sigmoid_mlp.jsonl"), mlp,
          [f"layers.{i}" for i in range(len(mlp.layers))], "sigmoid",
          "plain sigmoid MLP 12x32, PyTorch default init")
    torch.manual_seed(0)
    cnn = SmallCnn()
    train(os.path.join(out, "torch_cnn.jsonl"), cnn, ["conv1", "conv2", "fc"], "relu",
          "CNN conv8-conv16-pool-linear, ReLU")


if __name__ == "__main__":
    main()
