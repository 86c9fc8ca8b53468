"""The PyTorch reference for `memscope-bench`: the same tasks done the straightforward eager
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


def vit_module():
    """The plain-torch ViT with timm's names of scripts/make-torch-vit."""
    import importlib.machinery
    import importlib.util
    path = Path(__file__).resolve().parent.parent / "scripts" / "make-torch-vit"
    loader = importlib.machinery.SourceFileLoader("make_torch_vit", str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("make_torch_vit", loader))
    loader.exec_module(module)
    return module


def build(config):
    """The model of export.json's `model` entry: the small ResNet or a ViT."""
    (kind, c), = config.items()
    if kind == "SmallResNet":
        return SmallResNet(c)
    assert kind == "ViT", kind
    return vit_module().VisionTransformer(
        img=c["img_size"], patch=c["patch_size"], dim=c["dim"], depth=c["depth"], heads=c["heads"],
        classes=c["num_classes"], eps=c["layer_norm_eps"], softmax_head=c["head"] != "linear",
        mlp_ratio=c["mlp_ratio"], qkv_bias=c["qkv_bias"])


def load(config, path):
    model = build(config)
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model.eval()


def prepare(x, tuned):
    """`tuned`: the layout choices memscope makes (channels-last batches of 100), to show how
    much of the difference is layout rather than caching."""
    return x.contiguous(memory_format=torch.channels_last) if tuned else x


def accuracies(model, data, groups, tuned=False):
    with torch.no_grad():
        batches = data["images"].split(100 if tuned else 512)
        preds = torch.cat([model(prepare(x, tuned)).argmax(1) for x in batches])
    ok = preds == data["labels"]
    return [ok[data["groups"] == g].float().mean().item() for g in range(groups)]


def gradient_norms(model, train, group, n=200, tuned=False):
    """Per-filter gradient norms of the mean CE over the `n` lowest-confidence examples
    of `group` in train (the authors' code), model in eval mode."""
    idx = (train["groups"] == group).nonzero().flatten()
    x, y = prepare(train["images"][idx], tuned), train["labels"][idx]
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y, reduction="none")
    order = sorted(range(len(idx)), key=lambda i: (-loss[i].item(), i))[:n]
    model.zero_grad()
    F.cross_entropy(model(x[order]), y[order]).backward()
    return torch.cat([m.weight.grad.flatten(1).norm(dim=1) for _, m in weight_layers(model)])


def intervene(model, train, val, group, groups, k=3, before=True, tuned=False):
    """Accuracy change needs acc(θ) and acc(θ̃): with `before`, both are computed, as
    memscope's result reports both."""
    if before:
        accuracies(model, val, groups, tuned)
    norms = gradient_norms(model, train, group, tuned=tuned)
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
    return accuracies(changed, val, groups, tuned)


def sensitivity(config, states, epoch, val, groups, tuned=False):
    base = build(config)
    base.load_state_dict(states[epoch], strict=False)
    base.eval()
    before = accuracies(base, val, groups, tuned)
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
            rows.append([a - b for a, b in zip(accuracies(model, val, groups, tuned), before)])
    return rows


def timed(f, runs):
    ms, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = f()
        ms.append((time.perf_counter() - start) * 1e3)
    ms.sort()
    return {"median_ms": statistics.median(ms), "p95_ms": ms[round((len(ms) - 1) * 0.95)], "runs": runs}, out


def measure(args):
    torch.set_num_threads(args.threads)
    index = json.loads((args.export / "export.json").read_text())
    config = index["model"]
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
    tuned = args.tuned

    results = {}
    results["cold"], after = timed(
        lambda: intervene(load(config, path), train, val, smallest, groups, tuned=tuned), args.runs
    )
    model = load(config, path)
    results["warm"], _ = timed(lambda: intervene(model, train, val, smallest, groups, tuned=tuned), args.runs)
    results["cold_after_only"], _ = timed(
        lambda: intervene(load(config, path), train, val, smallest, groups, before=False, tuned=tuned),
        args.runs,
    )
    results["grads"], _ = timed(
        lambda: [gradient_norms(load(config, path), train, g, tuned=tuned) for g in range(groups)], args.runs
    )
    states = {e: load_file(args.export / f) for e, f in files.items()}
    results["sens"], rows = timed(lambda: sensitivity(config, states, epoch, val, groups, tuned), min(args.runs, 5))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "tuned": tuned,
           "timings": results, "intervention_after": after, "sensitivity_changes": rows}
    args.out.write_text(json.dumps(out))


def report(args):
    memscope = json.loads(args.memscope.read_text())
    plain, tuned = (json.loads(p.read_text()) for p in args.results)
    groups = len(memscope["intervention_after"])

    # PyTorch averages in float32: equal within 1e-5 means the same count of correct examples.
    def same(a, b):
        return len(a) == len(b) and all(abs(x - (y if y is not None else 0.0)) < 1e-5 for x, y in zip(a, b))

    def same_rows(a, b):
        return len(a) == len(b) and all(same(r, o) for r, o in zip(a, b))

    ours_after, ours_rows = memscope["intervention_after"], memscope["sensitivity_changes"]
    after, rows = plain["intervention_after"], plain["sensitivity_changes"]
    print(f"PyTorch {plain['torch']}, {plain['threads']} threads; memscope libtorch threads: {memscope['threads']}")
    print(f"intervention accuracies after: PyTorch {[round(a, 4) for a in after]}, "
          f"memscope {[round(a, 4) for a in ours_after]}: {'same' if same(after, ours_after) else 'DIFFERENT'}")
    print(f"sensitive-layer changes ({len(rows)} rewinds x {groups} groups): "
          f"{'same' if same_rows(rows, ours_rows) else 'DIFFERENT'}")
    ok = same(tuned["intervention_after"], after) and same_rows(tuned["sensitivity_changes"], rows)
    print("PyTorch tuned (memscope's choices: channels-last batches of 100, glibc keeping freed memory) "
          f"gets the same numbers: {'yes' if ok else 'NO'}")
    print(f"{'task':<52} {'memscope':>9} {'PyTorch':>9} {'ratio':>6} {'tuned':>9} {'ratio':>6}   p95: memscope / PyTorch / tuned")
    timings = {t["key"]: t for t in memscope["timings"]}
    for key in ["cold", "warm", "grads", "sens"]:
        t, r, u = timings[key], plain["timings"][key], tuned["timings"][key]
        print(f"{t['task'][:52]:<52} {t['median_ms']:>7.1f}ms {r['median_ms']:>7.1f}ms "
              f"{t['median_ms'] / r['median_ms']:>6.2f} {u['median_ms']:>7.1f}ms {t['median_ms'] / u['median_ms']:>6.2f}   "
              f"{t['p95_ms']:.1f} / {r['p95_ms']:.1f} / {u['p95_ms']:.1f} ms")
    r, u = plain["timings"]["cold_after_only"], tuned["timings"]["cold_after_only"]
    print(f"(PyTorch cold intervention without the before pass, acc(θ̃) only: {r['median_ms']:.1f} ms p50 "
          f"(tuned {u['median_ms']:.1f}); memscope / that = {timings['cold']['median_ms'] / r['median_ms']:.2f} "
          f"(tuned {timings['cold']['median_ms'] / u['median_ms']:.2f}))")
    for key in ["first_frame", "first_result"]:
        if key in timings:
            t = timings[key]
            print(f"{t['task'][:80]}: {t['median_ms']:.1f} ms p50, {t['p95_ms']:.1f} ms p95 (memscope only)")
    if memscope.get("explorer_peak_rss_mb") is not None:
        print(f"explorer peak resident memory after the first intervention: {memscope['explorer_peak_rss_mb']:.0f} MB")
    if memscope.get("warm_rss_growth_mb") is not None:
        print(f"memscope resident memory growth over the warm interventions: {memscope['warm_rss_growth_mb']:.0f} MB")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time the tasks on the exported demo; write JSON")
    m.add_argument("--export", required=True, type=Path)
    m.add_argument("--runs", type=int, default=20)
    m.add_argument("--tuned", action="store_true", help="channels-last batches of 100 (memscope's layout)")
    m.add_argument("--threads", type=int, default=2, help="intra-op threads (memscope's --threads)")
    m.add_argument("--out", required=True, type=Path)
    r = sub.add_parser("report", help="check memscope's numbers against the reference and print ratios")
    r.add_argument("--memscope", required=True, type=Path)
    r.add_argument("results", nargs=2, type=Path, help="plain.json tuned.json")
    args = ap.parse_args()
    measure(args) if args.command == "measure" else report(args)


if __name__ == "__main__":
    main()
