"""A small CNN for the 8x8 digits, trained with plain numpy (no PyTorch needed).

Topology: Conv(1->8, 3x3, pad 1) - act - AvgPool 2 - Conv(8->16, 3x3, pad 1) - act - AvgPool 2 -
Flatten(64) - Dense(64->10). The activation is ReLU, or a trainable clip ``clamp(x, 0, lambda)`` per
layer (QCFS / QC-ANN style: the lambda gradient is 1 where the input exceeds it), whose trained
lambdas become the SNN thresholds. Deterministic for a fixed seed (full-batch order from the seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _im2col(x, k=3, p=1):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))  # B,C,H,W,k,k
    b, c, h, w = win.shape[:4]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * h * w, c * k * k), (b, h, w)


def _col2im(cols, shape, k=3, p=1):
    b, c, h, w = shape
    cols = cols.reshape(b, h, w, c, k, k)
    out = np.zeros((b, c, h + 2 * p, w + 2 * p))
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky:ky + h, kx:kx + w] += cols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return out[:, :, p:p + h, p:p + w]


def _pool(x):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def _unpool(g):
    return np.repeat(np.repeat(g, 2, axis=2), 2, axis=3) / 4.0


@dataclass
class DigitsCnn:
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray
    lam: np.ndarray  # (2,) clip thresholds (used when clip=True)
    clip: bool

    def _act(self, z, i):
        return np.clip(z, 0, self.lam[i]) if self.clip else np.maximum(z, 0)

    def forward(self, x, cache=False):
        c1, s1 = _im2col(x)
        z1 = (c1 @ self.w1.reshape(8, -1).T + self.b1).reshape(s1[0], s1[1], s1[2], 8).transpose(0, 3, 1, 2)
        a1 = self._act(z1, 0)
        p1 = _pool(a1)
        c2, s2 = _im2col(p1)
        z2 = (c2 @ self.w2.reshape(16, -1).T + self.b2).reshape(s2[0], s2[1], s2[2], 16).transpose(0, 3, 1, 2)
        a2 = self._act(z2, 1)
        p2 = _pool(a2).reshape(x.shape[0], -1)
        logits = p2 @ self.w3.T + self.b3
        if cache:
            return logits, (c1, z1, p1, c2, z2, p2)
        return logits

    def spec(self):
        from atsnn.compiler.convert import AvgPool, Clip, Conv, Dense, Flatten, ReLU
        act = (lambda i: Clip(float(self.lam[i]))) if self.clip else (lambda i: ReLU())
        return [Conv(self.w1, self.b1, padding=1), act(0), AvgPool(2), Conv(self.w2, self.b2, padding=1), act(1),
                AvgPool(2), Flatten(), Dense(self.w3, self.b3)]


def train(x, y, *, clip: bool, seed: int = 0, epochs: int = 60, lr: float = 0.05, batch: int = 64) -> DigitsCnn:
    rng = np.random.default_rng(seed)
    m = DigitsCnn(w1=rng.normal(0, np.sqrt(2 / 9), (8, 1, 3, 3)), b1=np.zeros(8),
                  w2=rng.normal(0, np.sqrt(2 / 72), (16, 8, 3, 3)), b2=np.zeros(16),
                  w3=rng.normal(0, np.sqrt(1 / 64), (10, 64)), b3=np.zeros(10), lam=np.array([2.0, 2.0]), clip=clip)
    params = ["w1", "b1", "w2", "b2", "w3", "b3"] + (["lam"] if clip else [])
    vel = {k: np.zeros_like(getattr(m, k)) for k in params}
    n = x.shape[0]
    for ep in range(epochs):
        order = rng.permutation(n)
        rate = lr * 0.5 * (1 + np.cos(np.pi * ep / epochs))
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            xb, yb = x[idx], y[idx]
            logits, (c1, z1, p1, c2, z2, p2) = m.forward(xb, cache=True)
            pr = np.exp(logits - logits.max(axis=1, keepdims=True))
            pr /= pr.sum(axis=1, keepdims=True)
            g = pr.copy()
            g[np.arange(len(yb)), yb] -= 1
            g /= len(yb)
            grads = {"w3": g.T @ p2, "b3": g.sum(axis=0)}
            gp2 = (g @ m.w3).reshape(len(yb), 16, 2, 2)
            ga2 = _unpool(gp2)
            gz2 = ga2 * (z2 > 0) * ((z2 < m.lam[1]) if clip else 1)
            glam = np.zeros(2)
            if clip:
                glam[1] = (ga2 * (z2 >= m.lam[1])).sum()
            gz2f = gz2.transpose(0, 2, 3, 1).reshape(-1, 16)
            grads["w2"] = (gz2f.T @ c2).reshape(m.w2.shape)
            grads["b2"] = gz2f.sum(axis=0)
            gp1 = _col2im(gz2f @ m.w2.reshape(16, -1), p1.shape)
            ga1 = _unpool(gp1)
            gz1 = ga1 * (z1 > 0) * ((z1 < m.lam[0]) if clip else 1)
            if clip:
                glam[0] = (ga1 * (z1 >= m.lam[0])).sum()
                grads["lam"] = glam
            gz1f = gz1.transpose(0, 2, 3, 1).reshape(-1, 8)
            grads["w1"] = (gz1f.T @ c1).reshape(m.w1.shape)
            grads["b1"] = gz1f.sum(axis=0)
            for k in params:
                vel[k] = 0.9 * vel[k] - rate * (grads[k] + (5e-4 * getattr(m, k) if k.startswith("w") else 0))
                setattr(m, k, getattr(m, k) + vel[k])
            if clip:
                m.lam = np.maximum(m.lam, 0.1)
    return m


def accuracy(m: DigitsCnn, x, y) -> float:
    return float((m.forward(x).argmax(axis=1) == y).mean())
