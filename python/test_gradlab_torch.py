"""Tests of gradlab_torch's numerical core and file writer, with numpy only
(torch is not needed): python3 -m unittest discover -s python"""

import json
import math
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradlab_torch as gt  # noqa: E402


class Statistics(unittest.TestCase):
    def test_rms_is_norm_over_root_numel(self):
        a = np.array([3.0, 4.0], dtype=np.float32)
        self.assertAlmostEqual(gt.rms(a), 5.0 / math.sqrt(2.0), places=12)
        self.assertEqual(gt.rms(np.zeros(0)), 0.0)

    def test_per_example_rms_scales_the_mean_loss_gradient_by_the_batch(self):
        g = np.full((8, 4), 0.5, dtype=np.float32)
        self.assertAlmostEqual(gt.per_example_rms(g, 8), 4.0, places=12)

    def test_update_ratio(self):
        w0 = np.array([1.0, 0.0], dtype=np.float32)
        w1 = np.array([1.0, 0.1], dtype=np.float32)
        self.assertAlmostEqual(gt.update_ratio(w0, w1), 0.1 / math.sqrt(1.01), places=6)
        self.assertEqual(gt.update_ratio(w0, np.zeros(2)), 0.0)

    def test_cosine(self):
        self.assertAlmostEqual(gt.cosine([1, 0], [1, 1]), 1 / math.sqrt(2), places=12)
        self.assertIsNone(gt.cosine([0, 0], [1, 1]))
        self.assertIsNone(gt.cosine([1, 0, 0], [1, 1]))

    def test_forward_diversity(self):
        same = np.ones((4, 3))
        self.assertEqual(gt.forward_diversity(same), 0.0)
        spread = np.array([[1.0, -1.0], [-1.0, 1.0]])
        self.assertAlmostEqual(gt.forward_diversity(spread), 1.0, places=12)
        self.assertEqual(gt.forward_diversity(np.zeros((3, 2))), 0.0)

    def test_inactive_fraction(self):
        relu = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]], dtype=np.float32)
        self.assertAlmostEqual(gt.inactive_fraction(relu, "relu"), 1 / 3)
        sig = np.array([[0.9999, 0.5], [0.99995, 0.2]], dtype=np.float32)
        self.assertAlmostEqual(gt.inactive_fraction(sig, "sigmoid"), 0.5)
        self.assertIsNone(gt.inactive_fraction(relu - 1, "relu"))  # pre-activations
        self.assertIsNone(gt.inactive_fraction(relu, "gelu"))

    def test_layer_name(self):
        self.assertEqual(gt.layer_name("features.0.weight"), "features.0")
        self.assertEqual(gt.layer_name("scale"), "scale")


def layers_at(step, scale):
    g = [np.full((4, 4), scale * (i + 1), dtype=np.float32) for i in range(3)]
    w = [np.full((4, 4), 0.5 + 0.01 * step, dtype=np.float32) for _ in range(3)]
    return [(f"fc{i}", g[i], w[i]) for i in range(3)]


class Steps(unittest.TestCase):
    def test_a_step_line_has_every_required_field(self):
        s = gt.StepStatistics()
        line = s.record(0, 2.3, layers_at(0, 1e-3), [("fc0", np.ones((2, 4)))], 2,
                        accuracy=0.5)
        for key in ("type", "step", "loss", "grad_norm", "layers", "positions"):
            self.assertIn(key, line)
        self.assertEqual(line["type"], "step")
        self.assertEqual([l["index"] for l in line["layers"]], [0, 1, 2])
        self.assertAlmostEqual(line["positions"][0]["act_grad_rms"], 2.0)
        self.assertAlmostEqual(line["layers"][0]["act_grad_rms"], 2.0)
        self.assertNotIn("update_ratio", line["layers"][0])
        self.assertNotIn("cos_previous", line)
        line = s.record(1, 2.2, layers_at(1, 1e-3), [("fc0", np.ones((2, 4)))], 2)
        self.assertAlmostEqual(line["cos_previous"], 1.0)
        self.assertAlmostEqual(line["layers"][0]["update_ratio"], 0.01 / 0.51, places=6)
        grad = np.concatenate([g.ravel() for _, g, _ in layers_at(1, 1e-3)]).astype(np.float64)
        self.assertAlmostEqual(line["grad_norm"], float(np.sqrt(np.sum(grad ** 2))), places=12)

    def test_zero_gradients_and_steps_that_go_back_are_refused(self):
        s = gt.StepStatistics()
        with self.assertRaises(ValueError):
            s.record(0, 2.3, layers_at(0, 0.0), [], 2)
        s.record(3, 2.3, layers_at(0, 1e-3), [], 2)
        with self.assertRaises(ValueError):
            s.record(3, 2.3, layers_at(0, 1e-3), [], 2)

    def test_non_finite_values_are_written_as_null_and_flagged(self):
        s = gt.StepStatistics()
        layers = layers_at(0, 1e-3)
        layers[0] = ("fc0", np.full((4, 4), np.nan, dtype=np.float32), layers[0][2])
        line = s.record(0, float("nan"), layers, [], 2)
        self.assertIsNone(line["loss"])
        self.assertIsNone(line["grad_norm"])
        self.assertIs(line["non_finite"], True)
        json.dumps(line, allow_nan=False)  # valid JSON


class Writer(unittest.TestCase):
    def test_the_file_is_json_lines_with_the_run_line_first(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            w = gt.HistoryWriter(path, 3, class_counts=[5, 5, 6], positions=["a", "b"],
                                 activation="relu", batch_size=8)
            s = gt.StepStatistics()
            for t in range(3):
                w.write(s.record(t, 1.0 / (t + 1), layers_at(t, 1e-3),
                                 [("a", np.ones((8, 2))), ("b", np.ones((8, 2)))], 8))
            w.check(2, 0.5, 0.8, val_loss=float("inf"), val_accuracy=0.7, val_examples=10)
            w.shuffle_control(2, 1.1)
            w.close()
            with open(path) as f:
                lines = [json.loads(l) for l in f]
        self.assertEqual(lines[0], {"type": "run", "format": "gradlab-history", "version": 1,
                                    "num_classes": 3, "class_counts": [5, 5, 6],
                                    "positions": ["a", "b"], "activation": "relu",
                                    "batch_size": 8})
        self.assertEqual([l["type"] for l in lines[1:]],
                         ["step", "step", "step", "check", "shuffle_control"])
        self.assertIsNone(lines[4]["val_loss"])

    def test_bad_run_settings_are_refused(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            with self.assertRaises(ValueError):
                gt.HistoryWriter(path, 1)
            with self.assertRaises(ValueError):
                gt.HistoryWriter(path, 3, activation="swish")
            with self.assertRaises(ValueError):
                gt.HistoryWriter(path, 3, class_counts=[1, 2])


if __name__ == "__main__":
    unittest.main()
