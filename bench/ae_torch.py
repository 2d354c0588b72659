"""ae_torch.py — PyTorch 1.13's side of bench/ae.sh: examples/autoencoder.yaml,
denoising_autoencoder.yaml and vae.yaml rebuilt with torch.nn, the same
architecture and hyperparameters (Adam 1e-3, batch 128, 10 epochs, seed 0,
pixels / 255, shuffled each epoch), PyTorch's default initialization.
usage: ae_torch.py [THREADS [EPOCHS [MODEL...]]]. Prints one line per model: NAME METRIC VALUE SECONDS (the test mse per pixel
for the autoencoders, the test negative ELBO per image for the VAE, with ε
drawn, as mlc's evaluation does)."""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FM = "/usr/share/datasets/fashion-mnist/"


def images(name):
    b = gzip.open(FM + name).read()
    return torch.from_numpy(np.frombuffer(b, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255)


class AE(nn.Module):
    def __init__(self, noise=0.0):
        super().__init__()
        self.noise = noise
        self.f = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(),
                               nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())

    def loss(self, x):
        xin = x + self.noise * torch.randn_like(x) if self.training and self.noise else x
        return F.mse_loss(self.f(xin), x)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.h, self.mu, self.lv = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.d1, self.out = nn.Linear(20, 400), nn.Linear(400, 784)

    def loss(self, x):
        h = F.relu(self.h(x))
        mu, lv = self.mu(h), self.lv(h)
        z = mu + torch.exp(lv / 2) * torch.randn_like(mu)
        p = torch.sigmoid(self.out(F.relu(self.d1(z))))
        bce = F.binary_cross_entropy(p, x, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + lv - mu ** 2 - lv.exp()) / len(x)
        return bce + kl


def run(name, model, train, test, epochs=10, batch=128):
    torch.manual_seed(0)
    m = model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    t0 = time.time()
    for _ in range(epochs):
        m.train()
        for idx in torch.randperm(len(train)).split(batch):
            opt.zero_grad()
            loss = m.loss(train[idx])
            loss.backward()
            opt.step()
    secs = time.time() - t0
    m.eval()
    with torch.no_grad():
        total = sum(m.loss(test[i:i + batch]).item() * len(test[i:i + batch]) for i in range(0, len(test), batch))
    print(f"{name} {total / len(test):.6g} {secs:.1f}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    train, test = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
    models = {"autoencoder": AE, "denoising_autoencoder": lambda: AE(0.3), "vae": VAE}
    for name in sys.argv[3:] or models:
        run(name, models[name], train, test, epochs)
