"""Train a small torch text classifier from thresher shards, with the per-item weights in the loss.

Run one process per GPU (or CPU) with RANK / WORLD_SIZE set, as torchrun does; each rank reads a
disjoint slice of the shards. With --eval-db the model is scored against the gold labels of a split
in the project database (read-only), e.g. the held-out test split.

    python examples/train_worker.py demo-out/export/manifest.json \
        --eval-db demo-out/thresher.duckdb --eval-split test
"""

from __future__ import annotations

import argparse
import os
import re
import zlib

import torch
from torch import nn
from torch.utils.data import DataLoader

from thresher.storage.loader import ShardedParquetDataset, collate_rows, read_manifest

BUCKETS = 1 << 18
TOKEN = re.compile(r"[a-z0-9']+")


def hash_tokens(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unigrams and bigrams hashed into BUCKETS ids, as EmbeddingBag (ids, offsets) input."""
    ids, offsets = [], []
    for text in texts:
        offsets.append(len(ids))
        words = TOKEN.findall(text.lower())
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        ids.extend(zlib.crc32(g.encode()) % BUCKETS for g in grams or ["<empty>"])
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


class BagOfWords(nn.Module):
    def __init__(self, n_classes: int, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        self.out = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids, offsets))


def evaluate(model: nn.Module, db: str, split: str, device: torch.device) -> tuple[float, int]:
    from thresher.storage.schema import connect

    con = connect(db, read_only=True)
    try:
        rows = con.execute("SELECT text, gold FROM items WHERE split = ? AND gold IS NOT NULL", [split]).fetchall()
    finally:
        con.close()
    if not rows:
        raise SystemExit(f"No items with gold labels in split {split!r} of {db}.")
    ids, offsets = hash_tokens([r[0] for r in rows])
    with torch.no_grad():
        predicted = model(ids.to(device), offsets.to(device)).argmax(dim=1).cpu()
    gold = torch.tensor([r[1] for r in rows])
    return float((predicted == gold).float().mean()), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="manifest.json of a thresher export (or its directory)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--ignore-weights", action="store_true", help="train with uniform weights (baseline)")
    parser.add_argument("--eval-db", help="project database to evaluate against (gold labels)")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator().manual_seed(args.seed)
    manifest = read_manifest(args.manifest)
    dataset = ShardedParquetDataset(args.manifest, rank=rank, world_size=world_size,
                                    columns=["item_id", "text", "label", "weight"])
    model = BagOfWords(len(manifest["classes"])).to(device)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.01)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    for epoch in range(args.epochs):
        total, weight_sum = 0.0, 0.0
        for batch in DataLoader(dataset, batch_size=args.batch_size, collate_fn=collate_rows):
            ids, offsets = hash_tokens(batch["text"])
            logits = model(ids.to(device), offsets.to(device))
            weights = torch.ones_like(batch["weight"]) if args.ignore_weights else batch["weight"]
            weights = weights.to(device)
            loss = (loss_fn(logits, batch["label"].to(device)) * weights).sum() / weights.sum().clamp_min(1e-8)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * weights.sum().item()
            weight_sum += weights.sum().item()
        print(f"rank {rank}/{world_size} epoch {epoch + 1}: weighted loss {total / max(weight_sum, 1e-8):.4f} "
              f"on {len(dataset)} rows ({device})")
    if args.eval_db:
        accuracy, n = evaluate(model, args.eval_db, args.eval_split, device)
        mode = "uniform weights" if args.ignore_weights else "thresher weights"
        print(f"accuracy on {n} gold-labelled '{args.eval_split}' items: {accuracy:.3f} ({mode})")


if __name__ == "__main__":
    main()
