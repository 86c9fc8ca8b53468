"""PyTorch eager beside `memscope-bench --train`: one fine-tuning step (forward passes, loss,
backward, Adam) on the weights and training pixels `memscope export` wrote, with ERM and with
the silent-majority "code" objective written as the released code does it. Run through
bench/train.

    train.py measure --export DIR --runs N [--tuned] --out T.json
    train.py report --memscope M.json PLAIN.json TUNED.json
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import SmallResNet  # noqa: E402

WARMUP = 2  # as memscope's bench_train::WARMUP
BATCH = 100  # the released fine-tuning's batch
LR = 2e-4
EPS = 1e-8  # PyTorch's Adam default, the release's, and memscope mitigate's (--adam-eps)
TAU, LAMBDA, FRACTION = 0.5, 0.2, 0.01  # released code variant


def smallest_magnitude(model, fraction=FRACTION):
    """memscope's prune::smallest_magnitude: over every conv weight, |w| >= the (k+1)-th
    smallest |w|, k = ceil(fraction N)."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    mags = torch.cat([m.weight.detach().abs().flatten() for _, m in convs])
    k = min(math.ceil(fraction * mags.numel()), mags.numel() - 1)
    threshold = mags.kthvalue(k + 1).values
    return {f"{n}.weight": (m.weight.detach().abs() >= threshold).float() for n, m in convs}


def nt_xent(a, b, tau=TAU):
    """SimCLR's NT-Xent as the authors' utils.nt_xent (memscope's mitigate::ntxent)."""
    n = a.shape[0]
    z1, z2 = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    z = torch.cat([z1, z2])
    similarity = torch.exp(z @ z.t() / tau)
    mask = torch.ones(2 * n, 2 * n)
    idx = torch.arange(2 * n)
    mask[idx, idx] = 0
    mask[idx, (idx + n) % (2 * n)] = 0
    negatives = (similarity * mask).sum(1)
    positive = torch.exp((z1 * z2).sum(1) / tau)
    positive = torch.cat([positive, positive])
    return -torch.log(positive / (positive + negatives)).mean()


def erm_loss(model, masks, x, y):
    """Cross-entropy on the softmax output, as the release's Sequential(Linear, Softmax) head
    feeds CrossEntropyLoss (memscope mitigate's --ce-on softmax)."""
    return F.cross_entropy(F.softmax(model(x), 1), y)


def code_loss(model, masks, x, y):
    """The released order: a no-grad dense pass (BatchNorm statistics updated), the pruned
    pass (conv weights times the mask, sharing the parameters), the dense pass with gradients."""
    with torch.no_grad():
        dense_values = F.softmax(model(x), 1)
    params = dict(model.named_parameters())
    pruned = {name: params[name] * mask for name, mask in masks.items()}
    p = F.softmax(functional_call(model, pruned, (x,)), 1)
    first = nt_xent(dense_values, p)
    logits = model(x)
    second = nt_xent(F.softmax(logits, 1), p.detach())
    return first + second + LAMBDA * F.cross_entropy(F.softmax(logits, 1), y)


def measure(args):
    torch.set_num_threads(args.threads)
    index = json.loads((args.export / "export.json").read_text())
    config = index["model"]["SmallResNet"]
    train = load_file(args.export / dict(index["data"])["train"])
    files = dict(index["checkpoints"])
    epoch = max(files)
    state = load_file(args.export / files[epoch])
    images, labels = train["images"], train["labels"].long()
    batches = []
    for start in range(0, len(labels), BATCH):
        x = images[start:start + BATCH]
        x = x.contiguous(memory_format=torch.channels_last) if args.tuned else x.contiguous()
        batches.append((x, labels[start:start + BATCH]))

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "tuned": args.tuned,
           "epoch": epoch, "timings": {}, "losses": {}}
    for key, loss_fn in [("erm", erm_loss), ("code", code_loss)]:
        model = SmallResNet(config)
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
        model.train()
        masks = smallest_magnitude(model)
        opt = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
        ms, losses = [], []
        for step in range(WARMUP + args.runs):
            x, y = batches[step % len(batches)]
            start = time.perf_counter()
            loss = loss_fn(model, masks, x, y)
            value = loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            elapsed = (time.perf_counter() - start) * 1e3
            losses.append(value)
            if step >= WARMUP:
                ms.append(elapsed)
        ms.sort()
        out["timings"][key] = {"median_ms": statistics.median(ms), "p95_ms": ms[round((len(ms) - 1) * 0.95)],
                               "min_ms": ms[0], "runs": len(ms)}
        out["losses"][key] = losses
    args.out.write_text(json.dumps(out))


def report(args):
    memscope = json.loads(args.memscope.read_text())
    plain, tuned = (json.loads(p.read_text()) for p in args.results)
    ours = {t["key"]: t for t in memscope["timings"]}
    print(f"PyTorch {plain['torch']}, {plain['threads']} threads; memscope libtorch threads: {memscope['threads']}")
    for key in ["erm", "code"]:
        mine = memscope["losses"][key]
        for name, ref in [("PyTorch", plain), ("tuned", tuned)]:
            theirs = ref["losses"][key]
            worst = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(mine, theirs))
            print(f"{key}: loss of each of the {len(theirs)} steps, memscope against {name}: "
                  f"largest relative difference {worst:.1e} (step 1: {mine[0]:.6f} / {theirs[0]:.6f})")
    print(f"{'step (median of runs)':<60} {'memscope':>9} {'PyTorch':>9} {'ratio':>6} {'tuned':>9} {'ratio':>6}")
    for key in ["erm", "code"]:
        t, r, u = ours[key], plain["timings"][key], tuned["timings"][key]
        print(f"{t['task'][:60]:<60} {t['median_ms']:>7.1f}ms {r['median_ms']:>7.1f}ms "
              f"{t['median_ms'] / r['median_ms']:>6.2f} {u['median_ms']:>7.1f}ms {t['median_ms'] / u['median_ms']:>6.2f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time fine-tuning steps on the exported demo; write JSON")
    m.add_argument("--export", required=True, type=Path)
    m.add_argument("--runs", type=int, default=20)
    m.add_argument("--tuned", action="store_true", help="channels-last batches (memscope's layout)")
    m.add_argument("--threads", type=int, default=2, help="intra-op threads (memscope's --threads)")
    m.add_argument("--out", required=True, type=Path)
    r = sub.add_parser("report", help="check the losses agree and print ratios")
    r.add_argument("--memscope", required=True, type=Path)
    r.add_argument("results", nargs=2, type=Path, help="plain.json tuned.json")
    args = ap.parse_args()
    measure(args) if args.command == "measure" else report(args)


if __name__ == "__main__":
    main()
