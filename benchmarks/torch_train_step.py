"""A DSM training step in PyTorch: scorekit's fused loss against the loss written in PyTorch ops.

Each step: draw the noise and perturb the batch, run the model, compute the
DSM loss (NCSN weighting), backward, optimizer step. Variants:

  scorekit  scorekit.torch.perturb + scorekit.torch.dsm_loss (noise regenerated, fused loss+grad)
  torch     torch.randn_like noise, x + sigma z, 0.5 * mean(sum((sigma s + z)^2))

each eager and under torch.compile (the loss function compiled with fullgraph=True; the
optimizer step stays eager). The model and both loss functions are those of
examples/train_torch_dsm.py. Configurations: its 2-D ring, an image-sized batch with the
same network at width 256, and the loss alone (the score a leaf tensor, so the
step is perturb + loss + backward, no model). Repeats are interleaved; medians.

    python benchmarks/torch_train_step.py [--repeats 30] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import scorekit
import torch


def _example():
    """The training example's model and loss functions (examples/train_torch_dsm.py)."""
    path = Path(__file__).resolve().parents[1] / "examples" / "train_torch_dsm.py"
    spec = importlib.util.spec_from_file_location("train_torch_dsm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example()
ScoreNet, loss_scorekit, loss_torch = example.ScoreNet, example.scorekit_loss, example.torch_loss


class Leaf(torch.nn.Module):
    """No model: the score is a parameter, so the step is the loss and its gradient alone."""

    def __init__(self, b, d):
        super().__init__()
        self.s = torch.nn.Parameter(torch.zeros(b, d))

    def forward(self, x, sigma):
        return self.s + x


def make_step(loss_fn, model, compiled):
    fn = torch.compile(loss_fn, fullgraph=True) if compiled else loss_fn
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def step(x, sigma, counter):
        opt.zero_grad()
        loss = fn(model, x, sigma, counter)
        loss.backward()
        opt.step()
        return loss
    return step


def run(config, b, d, model_fn, repeats, inner):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, d, generator=g)
    sigma = torch.rand(b, generator=g) + 0.05
    variants = {}
    for name, loss_fn in (("scorekit", loss_scorekit), ("torch", loss_torch)):
        for compiled in (False, True):
            torch.manual_seed(0)
            step = make_step(loss_fn, model_fn(), compiled)
            for c in range(3):  # warm-up (compilation, recompilation for a dynamic counter)
                step(x, sigma, c)
            variants[f"{name} {'compiled' if compiled else 'eager'}"] = step
    times = {k: [] for k in variants}
    counter = 10
    for _ in range(repeats):
        for k, step in variants.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                step(x, sigma, counter)
                counter += 1
            times[k].append((time.perf_counter() - t0) / inner)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["torch eager"]
    print(f"\n{config}: B={b}, D={d}")
    print(f"  {'variant':20s} {'ms/step':>9s} {'torch eager / variant':>22s}")
    for k, v in med.items():
        print(f"  {k:20s} {v * 1e3:9.3f} {base / v:22.2f}x")
    return med


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        scorekit.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, scorekit "
          f"{scorekit.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}")
    run("2-D ring (the example's model, width 128)", 512, 2, lambda: ScoreNet(2, 128),
        args.repeats, 10)
    run("image-sized batch, the example's model at width 256", 128, 3072,
        lambda: ScoreNet(3072, 256), args.repeats, 2)
    run("loss alone (score a leaf tensor)", 128, 3072, lambda: Leaf(128, 3072), args.repeats, 5)
    run("loss alone (score a leaf tensor)", 64, 65536, lambda: Leaf(64, 65536), args.repeats, 2)


if __name__ == "__main__":
    main()
