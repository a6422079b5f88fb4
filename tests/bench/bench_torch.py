#!/usr/bin/env python3
"""Times the PyTorch seed functions on the batch bench_loss dumped (logits.npy, labels.npy).

Usage: bench_torch.py DIR THREADS [RUNS]
       bench_torch.py DIR --serve   (prints 'ready' once the batch is loaded, then reads a
                                     thread count per line from stdin and answers each with one
                                     timed run, after a warm-up the first time per count)
The functions are those of the bubbliiiing training code, restated (CE_Loss, Focal_Loss,
Dice_loss from nets/*_training.py, f_score from utils/utils_metrics.py, and compute_mIoU's
fast_hist on the arg-max), called as the training script calls them: every number segloss
answers with. The one-hot target the seed's dataloader builds is made before timing.
Prints 'torch_seed_ms=<median of RUNS (default 5) after a warm-up>'."""
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def ce_loss(inputs, target, cls_weights, num_classes):
    n, c, h, w = inputs.size()
    temp_inputs = inputs.transpose(1, 2).transpose(2, 3).contiguous().view(-1, c)
    temp_target = target.view(-1)
    return nn.CrossEntropyLoss(weight=cls_weights, ignore_index=num_classes)(temp_inputs,
                                                                             temp_target)


def focal_loss(inputs, target, cls_weights, num_classes, alpha=0.5, gamma=2):
    n, c, h, w = inputs.size()
    temp_inputs = inputs.transpose(1, 2).transpose(2, 3).contiguous().view(-1, c)
    temp_target = target.view(-1)
    logpt = -nn.CrossEntropyLoss(weight=cls_weights, ignore_index=num_classes,
                                 reduction='none')(temp_inputs, temp_target)
    pt = torch.exp(logpt)
    logpt *= alpha
    return (-((1 - pt) ** gamma) * logpt).mean()


def dice_loss(inputs, target, beta=1, smooth=1e-5):
    n, c, h, w = inputs.size()
    nt, ht, wt, ct = target.size()
    temp_inputs = torch.softmax(inputs.transpose(1, 2).transpose(2, 3).contiguous().view(n, -1, c), -1)
    temp_target = target.view(n, -1, ct)
    tp = torch.sum(temp_target[..., :-1] * temp_inputs, axis=[0, 1])
    fp = torch.sum(temp_inputs, axis=[0, 1]) - tp
    fn = torch.sum(temp_target[..., :-1], axis=[0, 1]) - tp
    score = ((1 + beta ** 2) * tp + smooth) / ((1 + beta ** 2) * tp + beta ** 2 * fn + fp + smooth)
    return 1 - torch.mean(score)


def f_score(inputs, target, beta=1, smooth=1e-5, threshold=0.5):
    n, c, h, w = inputs.size()
    nt, ht, wt, ct = target.size()
    temp_inputs = torch.softmax(inputs.transpose(1, 2).transpose(2, 3).contiguous().view(n, -1, c), -1)
    temp_target = target.view(n, -1, ct)
    temp_inputs = torch.gt(temp_inputs, threshold).float()
    tp = torch.sum(temp_target[..., :-1] * temp_inputs, axis=[0, 1])
    fp = torch.sum(temp_inputs, axis=[0, 1]) - tp
    fn = torch.sum(temp_target[..., :-1], axis=[0, 1]) - tp
    score = ((1 + beta ** 2) * tp + smooth) / ((1 + beta ** 2) * tp + beta ** 2 * fn + fp + smooth)
    return torch.mean(score)


def fast_hist(a, b, n):
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n ** 2).reshape(n, n)


def main():
    folder = sys.argv[1]
    serve = sys.argv[2] == "--serve"
    threads = 1 if serve else int(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    torch.set_num_threads(threads)
    logits = torch.from_numpy(np.load(folder + '/logits.npy'))
    labels = np.load(folder + '/labels.npy').astype(np.int64)
    c = logits.shape[1]
    labels[labels >= c] = c
    target = torch.from_numpy(labels)
    onehot = F.one_hot(target, c + 1).float()
    weights = torch.ones(c)

    def once():
        with torch.no_grad():
            ce = ce_loss(logits, target, weights, c)
            fo = focal_loss(logits, target, weights, c)
            dl = dice_loss(logits, onehot)
            fs = f_score(logits, onehot)
            pred = torch.argmax(logits, dim=1).numpy()
            hist = fast_hist(labels.reshape(-1), pred.reshape(-1), c)
        return float(ce), float(fo), float(dl), float(fs), int(hist.sum())

    def timed():
        t0 = time.perf_counter()
        once()
        return (time.perf_counter() - t0) * 1e3

    if serve:
        # the caller waits for this before its first round: importing torch and building the
        # one-hot target take seconds of CPU that would land in that round's figures
        print("ready", flush=True)
        warm = set()
        for line in sys.stdin:
            n = int(line)
            torch.set_num_threads(n)
            if n not in warm:
                once()
                warm.add(n)
            print(f"torch_seed_ms={timed():.3f}", flush=True)
        return
    once()
    times = sorted(timed() for _ in range(runs))
    print(f"torch_seed_ms={times[len(times) // 2]:.3f}")


if __name__ == '__main__':
    main()
