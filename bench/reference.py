"""The PyTorch reference for `memscope bench`: the same tasks done the straightforward eager
way (a full forward pass per evaluation, as the authors' code does), on the weights and data
that `memscope export` wrote. Checks that it gets memscope's accuracies, times each task and
prints the ratio memscope / PyTorch. Run through bench/run."""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

DISTANCES = [5, 10, 20, 30, 40]


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return self.bn(self.conv(x))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        # Registration order = memscope's layer order.
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.shortcut = ConvBn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class Stage(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.names = []
        for i, b in enumerate(blocks):
            setattr(self, f"block{i}", b)
            self.names.append(f"block{i}")

    def forward(self, x):
        for n in self.names:
            x = getattr(self, n)(x)
        return x


class SmallResNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = ConvBn(c["in_channels"], c["stem_channels"], 3, 1)
        cin = c["stem_channels"]
        for s, (cout, n) in enumerate(zip(c["stage_channels"], c["blocks_per_stage"])):
            blocks = []
            for b in range(n):
                blocks.append(Block(cin, cout, (1 if s == 0 else 2) if b == 0 else 1))
                cin = cout
            setattr(self, f"stage{s + 1}", Stage(blocks))
        self.head = nn.Linear(cin, c["num_classes"])

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def weight_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def load(config, path):
    model = SmallResNet(config)
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model.eval()


def accuracies(model, data, groups):
    with torch.no_grad():
        preds = torch.cat([model(x).argmax(1) for x in data["images"].split(512)])
    ok = preds == data["labels"]
    return [ok[data["groups"] == g].float().mean().item() for g in range(groups)]


def gradient_norms(model, train, group, n=200):
    """Per-filter gradient norms of the mean CE over the `n` lowest-confidence examples
    of `group` in train (the authors' code), model in eval mode."""
    idx = (train["groups"] == group).nonzero().flatten()
    x, y = train["images"][idx], train["labels"][idx]
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y, reduction="none")
    order = sorted(range(len(idx)), key=lambda i: (-loss[i].item(), i))[:n]
    model.zero_grad()
    F.cross_entropy(model(x[order]), y[order]).backward()
    return torch.cat([m.weight.grad.flatten(1).norm(dim=1) for _, m in weight_layers(model)])


def intervene(model, train, val, group, groups, k=3, before=True):
    """Accuracy change needs acc(θ) and acc(θ̃): with `before`, both are computed, as
    memscope's result reports both."""
    if before:
        accuracies(model, val, groups)
    norms = gradient_norms(model, train, group)
    top = sorted(range(len(norms)), key=lambda i: (-norms[i].item(), i))[:k]
    changed = copy.deepcopy(model)
    layers = weight_layers(changed)
    sizes = [m.weight.shape[0] for _, m in layers]
    with torch.no_grad():
        for flat in top:
            l = 0
            while flat >= sizes[l]:
                flat -= sizes[l]
                l += 1
            layers[l][1].weight[flat] = 0
    return accuracies(changed, val, groups)


def sensitivity(config, states, epoch, val, groups):
    base = SmallResNet(config)
    base.load_state_dict(states[epoch], strict=False)
    base.eval()
    before = accuracies(base, val, groups)
    rows = []
    for n in [d for d in DISTANCES if d <= epoch]:
        for name, _ in weight_layers(base):
            model = copy.deepcopy(base)
            old = states[epoch - n]
            module = dict(model.named_modules())[name]
            with torch.no_grad():
                module.weight.copy_(old[name + ".weight"])
                if module.bias is not None:
                    module.bias.copy_(old[name + ".bias"])
            rows.append([a - b for a, b in zip(accuracies(model, val, groups), before)])
    return rows


def timed(f, runs):
    ms, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = f()
        ms.append((time.perf_counter() - start) * 1e3)
    ms.sort()
    return {"median_ms": statistics.median(ms), "p95_ms": ms[round((len(ms) - 1) * 0.95)], "runs": runs}, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True, type=Path)
    ap.add_argument("--memscope", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    index = json.loads((args.export / "export.json").read_text())
    memscope = json.loads(args.memscope.read_text())
    config = index["model"]["SmallResNet"]
    groups = len(index["groups"])
    data = {s: load_file(args.export / f) for s, f in index["data"]}
    for d in data.values():
        d["labels"], d["groups"] = d["labels"].long(), d["groups"].long()
    train, val = data["train"], data["val"]
    files = dict(index["checkpoints"])
    epoch = max(files)
    path = args.export / files[epoch]
    counts = [(train["groups"] == g).sum().item() for g in range(groups)]
    smallest = min(range(groups), key=lambda g: (counts[g], g))

    results = {}
    results["cold"], after = timed(lambda: intervene(load(config, path), train, val, smallest, groups), args.runs)
    model = load(config, path)
    results["warm"], _ = timed(lambda: intervene(model, train, val, smallest, groups), args.runs)
    results["cold_after_only"], _ = timed(
        lambda: intervene(load(config, path), train, val, smallest, groups, before=False), args.runs
    )
    results["grads"], _ = timed(lambda: [gradient_norms(load(config, path), train, g) for g in range(groups)], args.runs)
    states = {e: load_file(args.export / f) for e, f in files.items()}
    results["sens"], rows = timed(lambda: sensitivity(config, states, epoch, val, groups), min(args.runs, 5))

    # PyTorch averages in float32: equal within 1e-5 means the same count of correct examples.
    same_after = all(abs(a - b) < 1e-5 for a, b in zip(after, memscope["intervention_after"]))
    ours = memscope["sensitivity_changes"]
    same_rows = len(rows) == len(ours) and all(
        abs(a - (b if b is not None else 0.0)) < 1e-5 for r, o in zip(rows, ours) for a, b in zip(r, o)
    )
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; memscope libtorch threads: {memscope['threads']}")
    print(f"intervention accuracies after: PyTorch {[round(a, 4) for a in after]}, "
          f"memscope {[round(a, 4) for a in memscope['intervention_after']]}: {'same' if same_after else 'DIFFERENT'}")
    print(f"sensitive-layer changes ({len(rows)} rewinds x {groups} groups): {'same' if same_rows else 'DIFFERENT'}")
    print(f"{'task':<58} {'memscope p50':>12} {'PyTorch p50':>12} {'ratio':>6}   (p95: memscope / PyTorch)")
    for key, t in zip(["cold", "warm", "grads", "sens"], memscope["timings"]):
        r = results[key]
        print(f"{t['task'][:58]:<58} {t['median_ms']:>10.1f}ms {r['median_ms']:>10.1f}ms "
              f"{t['median_ms'] / r['median_ms']:>6.2f}   ({t['p95_ms']:.1f} / {r['p95_ms']:.1f} ms)")
    r = results["cold_after_only"]
    print(f"(PyTorch cold intervention without the before pass, acc(θ̃) only: {r['median_ms']:.1f} ms p50, "
          f"{r['p95_ms']:.1f} ms p95; memscope / that = {memscope['timings'][0]['median_ms'] / r['median_ms']:.2f})")


if __name__ == "__main__":
    main()
