"""Train a small torch text classifier from thresher shards, with the per-item weights in the loss.

One process, or one per GPU (or CPU) under torchrun, which trains one model with
DistributedDataParallel: NCCL on GPUs, gloo on CPUs. Each rank reads a disjoint slice of the shards
(every row once per epoch across the ranks) through the thresher loader's column batches, and the
ranks' gradients are averaged every step, so their parameters stay identical. Ranks whose slices are
one batch shorter join the others (torch's Join), so uneven slices never hang a step.

    python examples/train_worker.py demo-out/export \\
        --eval-db demo-out/thresher.duckdb --eval-split test
    torchrun --standalone --nproc_per_node 2 examples/train_worker.py demo-out/export

With --eval-db the model is scored against the gold labels of a split in the project database
(read-only, on rank 0). --trace DIR writes, per rank, the item ids it trained on in each epoch and a
checksum of its parameters after each epoch (what the distributed test checks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
import zlib
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from thresher.storage.loader import ShardedParquetDataset, read_manifest

TOKEN = re.compile(r"[a-z0-9']+")


def hash_tokens(texts: list[str], buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unigrams and bigrams hashed into ``buckets`` ids, as EmbeddingBag (ids, offsets) input."""
    ids, offsets = [], []
    for text in texts:
        offsets.append(len(ids))
        words = TOKEN.findall(text.lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        ids.extend(zlib.crc32(g.encode()) % buckets for g in grams or ["<empty>"])
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


class BagOfWords(nn.Module):
    def __init__(self, n_classes: int, buckets: int, dim: int = 64) -> None:
        super().__init__()
        self.buckets = buckets
        self.embed = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.out = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids, offsets))


def per_row_loss(logits: torch.Tensor, labels: torch.Tensor | None, probs: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy per row against the hard ``labels``, or against the class ``probs`` (soft targets)."""
    if probs is not None:
        return -(probs * torch.log_softmax(logits, dim=1)).sum(dim=1)
    assert labels is not None, "hard targets need labels"
    return nn.functional.cross_entropy(logits, labels, reduction="none")


def weighted_loss(per_row: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The batch's loss: each row's loss times its weight, over the batch's total weight."""
    return (per_row * weights).sum() / weights.sum().clamp_min(1e-8)


def tokenize_batch(batch: dict, *, buckets: int) -> dict:
    """The DataLoader's collate step, run in its workers: hash the batch's texts there, not in the loop."""
    batch["ids"], batch["offsets"] = hash_tokens(batch.pop("text"), buckets)
    return batch


def evaluate(model: nn.Module, db: str, split: str, device: torch.device) -> tuple[float, int]:
    from thresher.storage.schema import connect

    con = connect(db, read_only=True)
    try:
        rows = con.execute("SELECT text, gold FROM items WHERE split = ? AND gold IS NOT NULL", [split]).fetchall()
    finally:
        con.close()
    if not rows:
        raise SystemExit(f"No items with gold labels in split {split!r} of {db}.")
    ids, offsets = hash_tokens([r[0] for r in rows], model.buckets)
    with torch.no_grad():
        predicted = model(ids.to(device), offsets.to(device)).argmax(dim=1).cpu()
    gold = torch.tensor([r[1] for r in rows])
    return float((predicted == gold).float().mean()), len(rows)


def checksum(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the export directory (or its .manifest.json)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per step on each rank")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--buckets", type=int, default=1 << 16, help="hashed n-gram vocabulary size")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes per rank")
    parser.add_argument("--ignore-weights", action="store_true", help="train with uniform weights (baseline)")
    parser.add_argument("--target", choices=["manifest", "soft", "hard"], default="manifest",
                        help="fit the label model's probabilities (soft) or the hard labels; default: the manifest's")
    parser.add_argument("--eval-db", help="project database to evaluate against (gold labels)")
    parser.add_argument("--verify-db", help="project database whose recorded manifest checksum the export must match")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--trace", help="directory for per-rank JSON: item ids per epoch, parameter checksums")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    distributed = world_size > 1
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    manifest = read_manifest(args.manifest, db=args.verify_db)
    target = manifest.get("target", {}).get("kind", "hard") if args.target == "manifest" else args.target
    dataset = ShardedParquetDataset(args.manifest, rank=rank, world_size=world_size, batch_size=args.batch_size,
                                    columns=["item_id", "text", "label", "probs", "weight"], shuffle=True, seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)  # the same initial parameters on every rank
    model = BagOfWords(len(manifest["classes"]), args.buckets)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.01)
    model = model.to(device)
    trained = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None) if distributed else model
    optimizer = torch.optim.Adagrad(model.parameters(), lr=args.lr)

    trace: dict = {"rank": rank, "world_size": world_size, "device": str(device), "epochs": []}
    for epoch in range(args.epochs):
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=None, num_workers=args.workers, pin_memory=device.type == "cuda",
                            collate_fn=partial(tokenize_batch, buckets=args.buckets))
        seen: list[str] = []
        total, weight_sum = torch.zeros((), device=device), torch.zeros((), device=device)
        started = time.perf_counter()
        with Join([trained]) if distributed else nullcontext():
            for batch in loader:
                logits = trained(batch["ids"].to(device, non_blocking=True), batch["offsets"].to(device, non_blocking=True))
                weights = batch["weight"].to(device, non_blocking=True)
                if args.ignore_weights:
                    weights = torch.ones_like(weights)
                probs = batch["probs"].to(device, non_blocking=True) if target == "soft" else None
                loss = weighted_loss(per_row_loss(logits, batch["label"].to(device, non_blocking=True), probs), weights)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach() * weights.sum()
                weight_sum += weights.sum()
                seen += batch["item_id"]
        seconds = time.perf_counter() - started
        rows = torch.tensor([len(seen)], device=device)
        if distributed:
            dist.all_reduce(rows)
        trace["epochs"].append({"items": seen, "checksum": checksum(model), "seconds": seconds})
        if rank == 0:
            print(f"epoch {epoch + 1}: weighted loss {float(total / weight_sum.clamp_min(1e-8)):.4f} (rank 0) on "
                  f"{int(rows.item())} rows, {world_size} rank(s) on {device}, {int(rows.item()) / seconds:,.0f} samples/s",
                  flush=True)
    if args.trace:
        Path(args.trace).mkdir(parents=True, exist_ok=True)
        (Path(args.trace) / f"rank{rank}.json").write_text(json.dumps(trace))
    if args.eval_db and rank == 0:
        accuracy, n = evaluate(model, args.eval_db, args.eval_split, device)
        mode = f"{target} targets, " + ("uniform weights" if args.ignore_weights else "thresher weights")
        print(f"accuracy on {n} gold-labelled '{args.eval_split}' items: {accuracy:.3f} ({mode})")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
