"""Train a noise-conditional score network with scorekit's fused DSM loss in PyTorch, then sample.

The data: a ring of eight Gaussians (``scorekit.GaussianMixture``, radius 4,
std 0.15). The model: an MLP on ``(x, log sigma)`` whose output is divided by
sigma (the NCSN parameterisation). Each training step perturbs the batch with
``scorekit.torch.perturb`` and scores it with ``scorekit.torch.dsm_loss``,
which regenerates the same noise from ``(seed, counter)`` instead of storing
it, and returns the loss with its gradient in one pass. The same training with
the loss written in plain PyTorch ops (``torch.randn`` noise) runs beside it
and both are timed. The trained model then samples with
``scorekit.annealed_langevin``, next to the same sampler on the mixture's
exact score.

    pip install ".[torch,demo]"
    python examples/train_torch_dsm.py            # about 35 s on 2 CPU cores
    python examples/train_torch_dsm.py --steps 300 --figure out.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scorekit
import scorekit.torch as st
import torch

SEED = 0


def ring(k=8, radius=4.0, std=0.15):
    angles = 2 * np.pi * np.arange(k) / k
    means = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return scorekit.GaussianMixture(means, np.full(k, std))


class ScoreNet(torch.nn.Module):
    """``s(x, sigma) = MLP(x, log sigma) / sigma`` for ``x`` of shape (B, d)."""

    def __init__(self, d=2, width=128):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 1, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, d))

    def forward(self, x, sigma):
        return self.net(torch.cat([x, sigma.log()[:, None]], 1)) / sigma[:, None]


def scorekit_loss(model, x, sigma, counter):
    xt = st.perturb(x, sigma, seed=SEED, counter=counter)
    return st.dsm_loss(model(xt, sigma), sigma, seed=SEED, counter=counter)


def torch_loss(model, x, sigma, counter):
    z = torch.randn_like(x)
    score = model(x + sigma[:, None] * z, sigma)
    return 0.5 * ((sigma[:, None] * score + z) ** 2).sum(1).mean()


def train(loss_fn, data, sigmas, steps, batch, lr=1e-3):
    torch.manual_seed(SEED)
    model = ScoreNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    levels = torch.from_numpy(sigmas.astype(np.float32))
    gen = torch.Generator().manual_seed(SEED)
    history = []
    t0 = time.perf_counter()
    for step in range(steps):
        x = torch.from_numpy(data.sample(batch, seed=SEED, counter=step, dtype=np.float32))
        sigma = levels[torch.randint(len(levels), (batch,), generator=gen)]
        opt.zero_grad()
        loss = loss_fn(model, x, sigma, step)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return model, history, time.perf_counter() - t0


def sample(score_fn, sigmas, n, steps_each):
    x0 = scorekit.uniform((n, 2), seed=SEED + 1, dtype=np.float32) * 16 - 8
    return scorekit.annealed_langevin(score_fn, x0, sigmas, n_steps_each=steps_each,
                                      step_lr=0.1 * sigmas[-1] ** 2, seed=SEED + 2)


def mode_report(data, x, std):
    """Fraction of samples within 3 std of a mode, and the share of the samples per mode."""
    d = np.linalg.norm(x[:, None, :] - data.means[None], axis=2)
    near = d.min(1) < 3 * std
    counts = np.bincount(d.argmin(1)[near], minlength=len(data.means))
    return near.mean(), counts / max(near.sum(), 1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--steps-each", type=int, default=100, help="Langevin steps per noise level")
    p.add_argument("--figure", default="train_torch_dsm.png", help="output figure ('' for none)")
    args = p.parse_args(argv)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data, std = ring(), 0.15
    sigmas = scorekit.geometric_sigmas(5.0, 0.05, 10)

    model, hist, t_sk = train(scorekit_loss, data, sigmas, args.steps, args.batch)
    _, hist_pt, t_pt = train(torch_loss, data, sigmas, args.steps, args.batch)
    print(f"training, {args.steps} steps of batch {args.batch}, {len(sigmas)} noise levels "
          f"{sigmas[0]:g} -> {sigmas[-1]:g}")
    tail = max(1, args.steps // 10)
    print(f"  scorekit.torch.dsm_loss   {t_sk:7.2f} s   final loss (mean of last {tail}) "
          f"{np.mean(hist[-tail:]):.3f}")
    print(f"  loss in PyTorch ops       {t_pt:7.2f} s   final loss (mean of last {tail}) "
          f"{np.mean(hist_pt[-tail:]):.3f}")

    @torch.no_grad()
    def learned(x, sigma):
        return model(torch.from_numpy(x), torch.from_numpy(sigma.astype(np.float32))).numpy()

    def exact(x, sigma):
        return data.score(x, sigma).astype(np.float32)

    xs = sample(learned, sigmas, args.samples, args.steps_each)
    xe = sample(exact, sigmas, args.samples, args.steps_each)
    print(f"annealed Langevin, {args.samples} samples, {args.steps_each} steps per level")
    for name, x in (("learned score", xs), ("exact score", xe)):
        near, share = mode_report(data, x, std)
        print(f"  {name:14s} within 3 std of a mode: {near:.3f}   share per mode: "
              + " ".join(f"{v:.2f}" for v in share))
    if args.figure:
        figure(data, xs, xe, hist, hist_pt, args.figure)
        print(f"figure: {args.figure}")
    return hist, xs, xe


def figure(data, xs, xe, hist, hist_pt, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    truth = data.sample(len(xs), seed=SEED + 3)
    for ax, x, title in zip(axes[:3], (truth, xs, xe),
                            ("data", "annealed Langevin, learned score",
                             "annealed Langevin, exact score")):
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
        ax.set(title=title, xlim=(-6, 6), ylim=(-6, 6), aspect="equal")
    k = max(1, len(hist) // 100)
    for h, label in ((hist, "scorekit.torch.dsm_loss"), (hist_pt, "loss in PyTorch ops")):
        axes[3].plot(np.convolve(h, np.ones(k) / k, mode="valid"), label=label)
    axes[3].set(title="DSM loss (running mean)", xlabel="step", yscale="log")
    axes[3].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
