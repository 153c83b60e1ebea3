"""Record a PyTorch training run as a gradlab history file.

The file is ``gradlab-history`` version 1, JSON Lines (docs/diagnostics.md,
"The history file"); ``gradlab diagnose --history FILE`` reads it and says
whether the run vanishes, explodes, has dead units, has nothing to learn,
overfits or is healthy, with the evidence.

Usage, in a plain PyTorch loop::

    from gradlab_torch import HistoryRecorder

    rec = HistoryRecorder("run.jsonl", model, positions=["fc1", "fc2", "fc3"],
                          num_classes=10, activation="relu")
    for step, (x, y) in enumerate(batches):
        logits = model(x)
        loss = F.cross_entropy(logits, y)          # the mean over the batch
        optimizer.zero_grad()
        loss.backward()
        rec.step(loss, batch_size=len(y), accuracy=(logits.argmax(1) == y).float().mean())
        optimizer.step()
        if step % 100 == 99:
            rec.check(train_loss=..., train_accuracy=..., val_loss=..., val_accuracy=...,
                      val_examples=len(val_set))
    rec.close()

``positions`` are module names (as in ``model.named_modules()``) whose
outputs are the depth positions, input to output: one per layer or residual
block (the linear or convolution layers themselves, or the blocks), never a
layer and its activation both, which would count each layer twice.

Only ``torch`` and ``numpy`` are needed; the statistics are computed in
numpy (``StepStatistics``), so they are testable without torch.
"""

import json
import math

import numpy as np

FORMAT = "gradlab-history"
VERSION = 1
ACTIVATIONS = ("relu", "leaky-relu", "gelu", "tanh", "sigmoid")


# ---------------------------------------------------------------- numbers


def _float(x):
    """A JSON number, or None for NaN and infinities (JSON has neither)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def rms(a):
    """Root mean square ||a|| / sqrt(numel) in float64 (0 for an empty array)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(a * a)))


def per_example_rms(grad, batch_size):
    """Per-example RMS of the mean-loss gradient at a position: B * rms."""
    return max(int(batch_size), 1) * rms(grad)


def update_ratio(previous, weight):
    """||w - previous|| / ||w|| (0 for a zero weight)."""
    w = np.asarray(weight, dtype=np.float64).ravel()
    p = np.asarray(previous, dtype=np.float64).ravel()
    norm = float(np.dot(w, w))
    if norm == 0.0:
        return 0.0
    d = w - p
    return math.sqrt(float(np.dot(d, d)) / norm)


def cosine(a, b):
    """Cosine similarity, None when either vector is zero or sizes differ."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        return None
    na, nb = math.sqrt(float(np.dot(a, a))), math.sqrt(float(np.dot(b, b)))
    if na == 0.0 or nb == 0.0:
        return None
    return max(-1.0, min(1.0, float(np.dot(a, b)) / (na * nb)))


def forward_diversity(h):
    """mean ||h_n - mean h||^2 / mean ||h_n||^2 over the batch axis (0 if all zero)."""
    h = np.asarray(h, dtype=np.float64)
    h = h.reshape(h.shape[0], -1)
    total = float(np.sum(h * h))
    if total == 0.0:
        return 0.0
    c = h - h.mean(axis=0, keepdims=True)
    return float(np.sum(c * c)) / total


def inactive_fraction(h, activation):
    """Fraction of units (after the batch axis) dead (ReLU: output <= 0) or
    saturated (sigmoid: y(1-y) < 1e-3, tanh: 1-y^2 < 1e-3) on every example;
    None for an activation without such a regime or values outside its range."""
    h = np.asarray(h, dtype=np.float32)
    if h.ndim < 2 or h.shape[0] < 2:
        return None
    h = h.reshape(h.shape[0], -1)
    if activation == "relu":
        if np.any(h < 0):
            return None
        inactive = h <= 0
    elif activation == "sigmoid":
        if np.any(h < 0) or np.any(h > 1):
            return None
        inactive = h * (1 - h) < 1e-3
    elif activation == "tanh":
        if np.any(h < -1) or np.any(h > 1):
            return None
        inactive = 1 - h * h < 1e-3
    else:
        return None
    return float(np.mean(np.all(inactive, axis=0)))


def layer_name(param_name):
    """The layer of a weight parameter: its name without ".weight"."""
    return param_name[: -len(".weight")] if param_name.endswith(".weight") else param_name


class StepStatistics:
    """The numerical core: one step line from numpy arrays, keeping the
    previous weights (update ratio) and the previous gradient (cosine)."""

    def __init__(self):
        self._previous_weights = {}
        self._previous_grad = None
        self._last_step = None

    def record(self, step, loss, layers, positions, batch_size, accuracy=None,
               gradient=None, diversities=None, dead_max=None, saturated_max=None):
        """The step line as a dict.

        layers: [(name, grad, weight)] input to output, grad of the mean loss;
        positions: [(name, grad_of_mean_loss_at_output)] input to output;
        gradient: every trainable gradient (default: the layers' gradients);
        diversities: {position name: forward diversity}.
        """
        step = int(step)
        if self._last_step is not None and step <= self._last_step:
            raise ValueError(f"step {step} does not come after step {self._last_step}")
        if gradient is None:
            gradient = [g for _, g, _ in layers]
        parts = [np.asarray(g, dtype=np.float32).ravel() for g in gradient]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if flat.size == 0 or not np.any(flat != 0):
            raise ValueError(
                f"step {step}: every gradient is exactly zero; record after "
                "loss.backward() and before optimizer.zero_grad()"
            )
        grad_norm = math.sqrt(float(np.sum(flat.astype(np.float64) ** 2)))
        cos_previous = None
        if self._previous_grad is not None:
            cos_previous = cosine(self._previous_grad, flat)
        loss = float(loss)
        non_finite = not (math.isfinite(loss) and math.isfinite(grad_norm))
        layer_lines = []
        for index, (name, grad, weight) in enumerate(layers):
            w = np.asarray(weight, dtype=np.float32).ravel().copy()
            line = {"name": name, "index": index, "grad_rms": _float(rms(grad)),
                    "weight_rms": _float(rms(w))}
            prev = self._previous_weights.get(name)
            if prev is not None and prev.size == w.size:
                line["update_ratio"] = _float(update_ratio(prev, w))
            self._previous_weights[name] = w
            layer_lines.append(line)
        diversities = diversities or {}
        position_lines = []
        for name, grad in positions:
            line = {"name": name, "act_grad_rms": _float(per_example_rms(grad, batch_size))}
            if diversities.get(name) is not None:
                line["diversity"] = _float(diversities[name])
            position_lines.append(line)
        # A layer that is also a position has its output's gradient too.
        at_position = {p["name"]: p["act_grad_rms"] for p in position_lines}
        for line in layer_lines:
            if at_position.get(line["name"]) is not None:
                line["act_grad_rms"] = at_position[line["name"]]
        self._previous_grad = flat.copy()
        self._last_step = step
        out = {"type": "step", "step": step, "loss": _float(loss)}
        if accuracy is not None:
            out["accuracy"] = _float(accuracy)
        out["grad_norm"] = _float(grad_norm)
        if cos_previous is not None:
            out["cos_previous"] = _float(cos_previous)
        if dead_max is not None:
            out["dead_max"] = _float(dead_max)
        if saturated_max is not None:
            out["saturated_max"] = _float(saturated_max)
        if non_finite:
            out["non_finite"] = True
        out["layers"] = layer_lines
        out["positions"] = position_lines
        return out


class HistoryWriter:
    """Writes the lines of a history file, each flushed at once (a killed
    run keeps every complete line). No torch needed."""

    def __init__(self, path, num_classes, class_counts=None, positions=None,
                 activation=None, source=None, model=None, data=None, batch_size=None):
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        run = {"type": "run", "format": FORMAT, "version": VERSION,
               "num_classes": int(num_classes)}
        if class_counts is not None:
            counts = [int(c) for c in class_counts]
            if len(counts) != int(num_classes):
                raise ValueError(f"{len(counts)} class counts for {num_classes} classes")
            run["class_counts"] = counts
        if positions:
            run["positions"] = list(positions)
        for key, value in (("activation", activation), ("source", source),
                           ("model", model), ("data", data)):
            if value is not None:
                run[key] = str(value)
        if batch_size is not None:
            run["batch_size"] = int(batch_size)
        self._file = open(path, "w", encoding="utf-8")
        self.write(run)

    def write(self, line):
        self._file.write(json.dumps(line, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def check(self, step, train_loss, train_accuracy, val_loss=None, val_accuracy=None,
              val_examples=0, snr=None, train_val_cos=None):
        line = {"type": "check", "step": int(step), "train_loss": _float(train_loss),
                "train_accuracy": _float(train_accuracy), "val_examples": int(val_examples)}
        for key, value in (("val_loss", val_loss), ("val_accuracy", val_accuracy),
                           ("snr", snr), ("train_val_cos", train_val_cos)):
            if value is not None:
                line[key] = _float(value)
        self.write(line)

    def shuffle_control(self, step, loss):
        self.write({"type": "shuffle_control", "step": int(step), "loss": _float(loss)})

    def close(self):
        if not self._file.closed:
            self._file.close()


# ------------------------------------------------------------------ torch


def _value(x):
    """A Python float from a tensor or a number."""
    return float(x.detach().item()) if hasattr(x, "detach") else float(x)


def _numpy(t):
    return t.detach().to("cpu").float().numpy()


class HistoryRecorder:
    """Records a PyTorch model's training to a history file.

    Call ``step(loss, batch_size)`` after ``loss.backward()`` and before
    ``optimizer.step()`` (and before zeroing gradients), ``check(...)``
    after a held-out evaluation, ``close()`` at the end.

    model: the ``nn.Module``; positions: names of modules (from
    ``model.named_modules()``) whose outputs are depth positions, input to
    output; num_classes: K; class_counts: training label counts (for the
    chance loss when classes are imbalanced); activation: the network's
    non-linearity ("relu", "leaky-relu", "gelu", "tanh", "sigmoid"), to
    count dead or saturated units on its modules' outputs every
    ``forward_stats_every`` steps. Layers are the parameters named
    ``*.weight`` with two or more dimensions (linear and convolution
    weights), in ``named_parameters()`` order.
    """

    def __init__(self, path, model, positions, num_classes, class_counts=None,
                 activation=None, forward_stats_every=10, model_name=None, data=None,
                 batch_size=None):
        import torch

        self._torch = torch
        self.model = model
        self.positions = list(positions)
        modules = dict(model.named_modules())
        missing = [p for p in self.positions if p not in modules]
        if missing:
            raise ValueError(f"no module named {missing} in the model (see model.named_modules())")
        self.activation = activation
        self.forward_stats_every = int(forward_stats_every)
        self._outputs = {}
        self._units = {}
        self._handles = []
        for name in self.positions:
            self._handles.append(modules[name].register_forward_hook(self._keep(name)))
        kinds = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
        if activation in kinds:
            for name, m in modules.items():
                if isinstance(m, kinds[activation]):
                    self._handles.append(m.register_forward_hook(self._keep_units(name)))
        self._stats = StepStatistics()
        self._writer = HistoryWriter(
            path, num_classes, class_counts=class_counts, positions=self.positions,
            activation=activation, source=f"pytorch {torch.__version__}",
            model=model_name or type(model).__name__, data=data, batch_size=batch_size)
        self._step = 0

    def _keep(self, name):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if self._torch.is_grad_enabled() and out.requires_grad:
                out.retain_grad()
                self._outputs[name] = out
        return hook

    def _keep_units(self, name):
        def hook(_module, _inputs, output):
            if self._torch.is_grad_enabled() and self.model.training:
                self._units[name] = output.detach()
        return hook

    def step(self, loss, batch_size, accuracy=None, step=None):
        """Records the step just back-propagated; returns the line written."""
        t = self._step if step is None else int(step)
        layers, gradient = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad or p.grad is None:
                continue
            g = _numpy(p.grad)
            gradient.append(g)
            if name.endswith(".weight") and p.dim() >= 2:
                layers.append((layer_name(name), g, _numpy(p)))
        positions = []
        for name in self.positions:
            out = self._outputs.get(name)
            if out is None or out.grad is None:
                raise RuntimeError(
                    f"position {name!r} has no gradient: call step() after loss.backward() "
                    "and run the forward pass with gradients enabled")
            positions.append((name, _numpy(out.grad)))
        forward = self.forward_stats_every > 0 and t % self.forward_stats_every == 0
        diversities, dead, saturated = {}, None, None
        if forward:
            for name in self.positions:
                diversities[name] = forward_diversity(_numpy(self._outputs[name]))
            fractions = [f for f in (inactive_fraction(_numpy(u), self.activation)
                                     for u in self._units.values()) if f is not None]
            if fractions:
                if self.activation == "relu":
                    dead = max(fractions)
                else:
                    saturated = max(fractions)
        line = self._stats.record(
            t, _value(loss), layers, positions, batch_size,
            accuracy=None if accuracy is None else _value(accuracy), gradient=gradient,
            diversities=diversities, dead_max=dead, saturated_max=saturated)
        self._writer.write(line)
        self._outputs.clear()
        self._units.clear()
        self._step = t + 1
        return line

    def check(self, train_loss, train_accuracy, val_loss=None, val_accuracy=None,
              val_examples=0, snr=None, train_val_cos=None, step=None):
        """Records a held-out check at the last recorded step (or ``step``)."""
        t = self._step - 1 if step is None else int(step)
        self._writer.check(t, _value(train_loss), _value(train_accuracy),
                           None if val_loss is None else _value(val_loss),
                           None if val_accuracy is None else _value(val_accuracy),
                           val_examples, snr, train_val_cos)

    def close(self):
        """Removes the hooks and closes the file."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
