"""One rank of a data-parallel DSM training run (torch.distributed, gloo on loopback).

Run by tests/test_torch_distributed.py as ``python ddp_worker.py RANK WORLD RENDEZVOUS OUT``;
with WORLD = 1 and RENDEZVOUS = "-" it trains on the whole batch in one process.
Rank r trains on rows ``CUTS[r]`` of the global batch, with ``offset`` = the
first row, so its noise is the noise those rows get in the unsplit batch.
"""

import sys

import numpy as np
import scorekit.torch as st
import torch

B, STEPS, SEED = 12, 3, 5
CUTS = {1: [(0, 12)], 2: [(0, 5), (5, 12)]}  # uneven shards


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(),
                               torch.nn.Linear(32, 2)).double()


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, 2, generator=g, dtype=torch.float64), \
        torch.rand(B, generator=g, dtype=torch.float64) + 0.1


def shard_loss(net, x, sigma, offset, counter, world):
    """``world * sum(shard losses) / B``: the DDP gradient average then equals the global mean's."""
    xt = st.perturb(x, sigma, seed=SEED, counter=counter, offset=offset)
    score = net(torch.cat([xt, sigma[:, None].log()], 1)) / sigma[:, None]
    loss = st.dsm_loss(score, sigma, seed=SEED, counter=counter, offset=offset, reduction="sum")
    return loss * (world / B)


def main(rank, world, rendezvous, out):
    net = model()
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
        net = torch.nn.parallel.DistributedDataParallel(net)
    x, sigma = batch()
    a, b = CUTS[world][rank]
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses, grads = [], []
    for counter in range(STEPS):
        opt.zero_grad()
        loss = shard_loss(net, x[a:b], sigma[a:b], a, counter, world)
        loss.backward()
        total = loss.detach() / world
        if world > 1:
            dist.all_reduce(total)
        losses.append(total.item())
        grads.append(np.concatenate([p.grad.numpy().ravel() for p in net.parameters()]))
        opt.step()
    params = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    np.savez(out, losses=np.array(losses), grads=np.array(grads), params=params)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
