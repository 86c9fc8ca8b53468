"""PyTorch eager beside `memscope-bench --scale`: a torchvision ResNet at 224 px on the weights
and pixels memscope exported. Run through bench/scale.

    scale.py make --arch resnet50 --out RUN_DIR         random weights (BatchNorm statistics
                                                         randomised) saved as epoch_1.pth
    scale.py probe --arch resnet50 --run RUN_DIR --export DIR
                                                         epoch_2.pth: a head fitted to the digits
    scale.py measure --export DIR --memscope M.json --runs N --out T.json
    scale.py report --memscope M.json --torch T.json
"""

import argparse
import copy
import importlib.machinery
import importlib.util
import json
import os
import resource
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def fixtures():
    path = Path(__file__).resolve().parent.parent / "scripts" / "make-torch-fixtures"
    loader = importlib.machinery.SourceFileLoader("make_torch_fixtures", str(path))
    spec = importlib.util.spec_from_loader("make_torch_fixtures", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


FX = fixtures()


def build(arch):
    if arch == "resnet18":
        model = FX.ResNet(FX.BasicBlock, [2, 2, 2, 2], 2, False)
    elif arch == "resnet34":
        model = FX.ResNet(FX.BasicBlock, [3, 4, 6, 3], 2, False)
    else:
        model = FX.ResNet(FX.Bottleneck, [3, 4, 6, 3], 2, False)
    model.forward = model.logits
    return model


def make(args):
    torch.manual_seed(0)
    model = build(args.arch)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "epoch_1.pth"))


def probe(args):
    """A head that reads the digits: the classifier of the random backbone fitted (Adam, 300
    steps of cross-entropy) to its pooled features on the exported val images, saved as the
    next epoch, so that predictions differ between images and interventions change them."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    val = load_file(args.export / "data-val.safetensors")
    state = torch.load(os.path.join(args.run, "epoch_1.pth"))
    model = build(args.arch)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        feats = []
        for x in val["images"].split(100):
            x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            for i in range(1, 5):
                x = getattr(model, f"layer{i}")(x)
            feats.append(torch.flatten(model.avgpool(x), 1))
        feats = torch.cat(feats)
    head = torch.nn.Linear(feats.shape[1], 2)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01, weight_decay=1e-3)
    # Features that barely vary would get huge weights after standardising, and a head that
    # amplifies rounding differences is no model anyone trains: keep every scale within 10x of
    # the typical one.
    std = feats.std(0)
    mean, std = feats.mean(0), std.clamp_min(std.median().item() * 0.1)
    labels = val["labels"].long()
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(head((feats - mean) / std), labels).backward()
        optimizer.step()
    with torch.no_grad():
        state["fc.weight"] = head.weight / std
        state["fc.bias"] = head.bias - (head.weight / std) @ mean
    torch.save(state, os.path.join(args.run, "epoch_2.pth"))


def weight_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def accuracies(model, val, groups):
    with torch.no_grad():
        preds = torch.cat([model(x).argmax(1) for x in val["images"].split(100)])
    ok = preds == val["labels"]
    return [ok[val["groups"] == g].float().mean().item() for g in range(groups)]


def gradient_norms(model, train, group, layer=None, n=200):
    """Per-filter norms of the gradient of the mean cross-entropy over the `n` lowest-confidence
    training examples of `group` (all of them when fewer), model in eval mode; every conv and
    linear layer in order, or only `layer`."""
    idx = (train["groups"] == group).nonzero().flatten()
    x, y = train["images"][idx], train["labels"][idx]
    if len(idx) > n:
        with torch.no_grad():
            loss = F.cross_entropy(model(x), y, reduction="none")
        order = sorted(range(len(idx)), key=lambda i: (-loss[i].item(), i))[:n]
        x, y = x[order], y[order]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    layers = [(n_, m) for n_, m in weight_layers(model) if layer is None or n_ == layer]
    return layers, torch.cat([m.weight.grad.flatten(1).norm(dim=1) for _, m in layers])


def intervene(model, train, val, group, groups, layer=None, k=3):
    accuracies(model, val, groups)  # acc(θ), as memscope's result reports it
    layers, norms = gradient_norms(model, train, group, layer)
    top = sorted(range(len(norms)), key=lambda i: (-norms[i].item(), i))[:k]
    names = [n for n, _ in layers]
    sizes = [m.weight.shape[0] for _, m in layers]
    changed = copy.deepcopy(model)
    modules = dict(changed.named_modules())
    with torch.no_grad():
        for flat in top:
            l = 0
            while flat >= sizes[l]:
                flat -= sizes[l]
                l += 1
            modules[names[l]].weight[flat] = 0
    return accuracies(changed, val, groups)


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
    arch = index["model"]["ResNet"]["depth"]
    groups = len(index["groups"])
    layer = json.loads(args.memscope.read_text())["layer"]
    data = {s: load_file(args.export / f) for s, f in index["data"]}
    for d in data.values():
        d["labels"], d["groups"] = d["labels"].long(), d["groups"].long()
    train, val = data["train"], data["val"]
    files = dict(index["checkpoints"])
    path = args.export / files[max(files)]
    counts = [(train["groups"] == g).sum().item() for g in range(groups)]
    smallest = min(range(groups), key=lambda g: (counts[g], g))

    def load():
        model = build(arch)
        missing, unexpected = model.load_state_dict(load_file(path), strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
        return model.eval()

    results, out = {}, {}
    model = load()
    results["forward"], out["forward_accuracy"] = timed(lambda: accuracies(model, val, groups), args.runs)
    for key, scope in [("global", None), ("layer", layer)]:
        results[f"cold_{key}"], out[f"{key}_after"] = timed(
            lambda: intervene(load(), train, val, smallest, groups, scope), args.runs)
        results[f"warm_{key}"], _ = timed(lambda: intervene(model, train, val, smallest, groups, scope), args.runs)
    results["grads"], _ = timed(lambda: gradient_norms(load(), train, smallest), args.runs)
    out.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "timings": results,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    args.out.write_text(json.dumps(out))


def report(args):
    ours = json.loads(args.memscope.read_text())
    ref = json.loads(args.torch.read_text())
    n = ours["val_examples"] / len(ours["forward_accuracy"])  # examples per group (balanced val)

    def counts(acc):
        return [round((a or 0.0) * n) for a in acc]

    for key in ["forward_accuracy", "global_after", "layer_after"]:
        a, b = counts(ours[key]), counts(ref[key])
        print(f"{key}: memscope {a}, PyTorch {b}: {'same' if a == b else 'DIFFERENT'}")
    print(f"PyTorch {ref['torch']}, {ref['threads']} threads; memscope libtorch threads {ours['threads']}; "
          f"{ours['val_examples']} val images; within-layer scope {ours['layer']}; "
          f"memscope activation cache {ours['cache_mb']} MB")
    print(f"{'task':<66} {'memscope':>10} {'PyTorch':>10} {'ratio':>6}")
    timings = {t["key"]: t for t in ours["timings"]}
    for key in ["forward", "cold_global", "warm_global", "cold_layer", "warm_layer", "grads"]:
        t, r = timings[key], ref["timings"][key]
        print(f"{t['task'][:66]:<66} {t['median_ms']:>8.0f}ms {r['median_ms']:>8.0f}ms "
              f"{t['median_ms'] / r['median_ms']:>6.2f}")
    print(f"peak resident memory: memscope {ours['peak_rss_mb']:.0f} MB, PyTorch {ref['peak_rss_mb']:.0f} MB")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--arch", required=True, choices=["resnet18", "resnet34", "resnet50"])
    m.add_argument("--out", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--arch", required=True, choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--run", required=True)
    p.add_argument("--export", required=True, type=Path)
    t = sub.add_parser("measure")
    t.add_argument("--export", required=True, type=Path)
    t.add_argument("--memscope", required=True, type=Path)
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--threads", type=int, default=2, help="intra-op threads (memscope's --threads)")
    t.add_argument("--out", required=True, type=Path)
    r = sub.add_parser("report")
    r.add_argument("--memscope", required=True, type=Path)
    r.add_argument("--torch", required=True, type=Path)
    args = ap.parse_args()
    {"make": make, "probe": probe, "measure": measure, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
