"""Benchmark: the static (model2vec) MiniLM against the full MiniLM, for speed and for detection.

1. Throughput in texts per second on this machine: the full sentence-transformers MiniLM on the
   YouTube + SMS texts, the static model on the same texts and on --corpus texts made by repeating
   the real texts of YouTube, SMS, AG News and TREC (say so when quoting it). Distilling the static
   model once is timed separately.
2. Agreement: Pearson r between the two models' pairwise cosine similarities on --pairs texts, and
   how many of each text's 10 nearest neighbours (full model) the static model also finds.
3. What matters downstream: noise-detection F1 with each encoder (and TF-IDF) on YouTube and SMS with
   20 % symmetric injected noise, seeds --seeds, through the same code as noise_detection.py.

    .venv/bin/python -m benchmarks.embeddings --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.noise_detection import agnews, evaluate, inject, sms, trec, youtube
from thresher.features import SentenceEncoder, StaticEncoder, TfidfConfig, tfidf_features


def rate(encode, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    vectors = encode(texts)
    return vectors, len(texts) / (time.perf_counter() - started)


def unit(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--corpus", type=int, default=200_000, help="texts for the static model's throughput")
    parser.add_argument("--pairs", type=int, default=2000, help="texts for the agreement measures")
    args = parser.parse_args()
    console = Console(width=160)

    sets = {"youtube": youtube(), "sms": sms()}
    texts = sets["youtube"][0] + sets["sms"][0]
    full = SentenceEncoder()
    full.setup()
    with tempfile.TemporaryDirectory() as cache:
        static = StaticEncoder(directory=Path(cache))
        started = time.perf_counter()
        static.setup()
        distill_seconds = time.perf_counter() - started

        full_vectors, full_rate = rate(full.encode, texts)
        static_vectors, static_rate = rate(static.encode, texts)
        pool = texts + agnews(4000)[0] + trec()[0]
        corpus = (pool * (args.corpus // len(pool) + 1))[: args.corpus]
        _, corpus_rate = rate(static.encode, corpus)

        speed = Table(title=f"Encoding throughput (2 cores); static model distilled once in {distill_seconds:.0f} s")
        for column in ("encoder", "texts", "texts/s", "vs full MiniLM"):
            speed.add_column(column)
        speed.add_row("full MiniLM (sentence-transformers)", f"{len(texts):,}", f"{full_rate:,.0f}", "1.0x")
        speed.add_row("static MiniLM (model2vec)", f"{len(texts):,}", f"{static_rate:,.0f}", f"{static_rate / full_rate:,.0f}x")
        speed.add_row("static MiniLM, repeated real texts", f"{len(corpus):,}", f"{corpus_rate:,.0f}",
                      f"{corpus_rate / full_rate:,.0f}x")
        console.print(speed)

        rng = np.random.default_rng(0)
        sample = rng.choice(len(texts), min(args.pairs, len(texts)), replace=False)
        a, b = unit(full_vectors[sample]), unit(static_vectors[sample])
        upper = np.triu_indices(len(sample), 1)
        ca, cb = (a @ a.T), (b @ b.T)
        pearson = float(np.corrcoef(ca[upper], cb[upper])[0, 1])
        np.fill_diagonal(ca, -np.inf)
        np.fill_diagonal(cb, -np.inf)
        top_a, top_b = np.argsort(-ca, axis=1)[:, :10], np.argsort(-cb, axis=1)[:, :10]
        overlap = float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(top_a, top_b)]))
        zero = float((np.linalg.norm(static_vectors, axis=1) == 0).mean())
        console.print(f"Agreement on {len(sample)} texts: Pearson r of pairwise cosines {pearson:.3f}; "
                      f"10-nearest-neighbour overlap {overlap:.3f}; texts with no known token (zero vector) {zero:.2%}")

        features = {"minilm": {}, "minilm-static": {}, "tfidf": {}}
        start = 0
        for name, (set_texts, _) in sets.items():
            features["minilm"][name] = full_vectors[start:start + len(set_texts)]
            features["minilm-static"][name] = static_vectors[start:start + len(set_texts)]
            features["tfidf"][name] = tfidf_features(set_texts, TfidfConfig(max_features=20_000))
            start += len(set_texts)

    detectors = ["confident_learning", "small_loss", "hybrid"]
    table = Table(title=f"Noise-detection F1 at 20 % symmetric noise (mean over seeds {args.seeds})")
    for column in ("dataset", "detector", "tfidf", "full MiniLM", "static MiniLM", "static - full"):
        table.add_column(column)
    gaps = []
    for name, (_, gold) in sets.items():
        f1 = {encoder: {d: [] for d in detectors} for encoder in features}
        for seed in args.seeds:
            noisy = inject("sym20", gold, None, np.random.default_rng(seed))
            for encoder, by_set in features.items():
                for row in evaluate(name, "sym20", by_set[name], gold, noisy, seed):
                    if row["detector"] in detectors:
                        f1[encoder][row["detector"]].append(row["f1"])
        for d in detectors:
            means = {e: float(np.mean(f1[e][d])) for e in features}
            gaps.append(means["minilm-static"] - means["minilm"])
            table.add_row(name, d, *(f"{means[e]:.3f}" for e in ("tfidf", "minilm", "minilm-static")),
                          f"{means['minilm-static'] - means['minilm']:+.3f}")
    console.print(table)
    console.print(f"Static minus full MiniLM F1: mean {np.mean(gaps):+.3f}, worst {min(gaps):+.3f}")


if __name__ == "__main__":
    main()
