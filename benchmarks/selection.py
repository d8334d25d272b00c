"""Benchmark: targeted data selection (CoLoR-Filter, GIO) against random selection, on real text.

Pool: 3,000 AG News, 2,000 IMDB, 3,000 SMS and 3,000 TREC texts (11,000 in all), each with its
domain's gold label mapped into one joint label space (AG News 0-3, IMDB 4-5, SMS 6-7, TREC 8-13),
and 20 % of the labels flipped to another class of the same domain. Target: 300 clean items of one
domain taken from outside the pool (SMS valid, TREC valid). Budgets: 5 / 10 / 20 % of the pool.
A logistic regression on TF-IDF is trained on each selection (with its noisy labels) and scored on
500 held-out test items of the target domain (accuracy among that domain's classes). Control: the
target is 300 items drawn at random from all four domains' held-out parts, scored by the mean
accuracy over the four test sets; no method should gain there.

CoLoR-Filter uses the TF-IDF classifier (5-fold cross-fitted prior; conditional = pool part + the
target, up-weighted), ranked with the agreement guard (default), without it (``color_no_guard``),
and with per-class quotas that follow the target (``color_balanced``); ``color_lm`` is the
language-model mode (byte-level LMs, labels unused). GIO works on static MiniLM embeddings (``minilm-static``), with
``stop="never"`` so that the budget decides the size, and ``v_init="jump"`` (a random target row
each round; the package's default ``"mean"`` failed here, see benchmarks/README.md). Selection time is reported per method.

    .venv/bin/python -m benchmarks.selection --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression

from benchmarks.noise_detection import SHARED, sms, trec
from thresher.features import StaticEncoder, TfidfConfig, tfidf_features
from thresher.reweighting.select import GIO, ColorFilter, LMColorFilter

DOMAINS = {"agnews": 4, "imdb": 2, "sms": 2, "trec": 6}
BUDGETS = [0.05, 0.1, 0.2]


def _json(path: Path) -> list[tuple[str, int]]:
    return [(r["text"], int(r["label"])) for r in json.loads(path.read_text())]


def _sms(split: str) -> list[tuple[str, int]]:
    return list(zip(*sms(split)))


def _trec(split: str) -> list[tuple[str, int]]:
    return list(zip(*trec(split)))


def load() -> dict[str, dict[str, list[tuple[str, int]]]]:
    """{domain: {"pool", "target", "test"}} with disjoint rows, labels local to the domain."""
    rng = np.random.default_rng(0)

    def take(rows, n):
        return [rows[i] for i in rng.permutation(len(rows))[:n]]

    agnews_dev, agnews_test = _json(SHARED / "cosine_agnews_devtest" / "dev_data.json"), _json(SHARED / "cosine_agnews_devtest" / "test_data.json")
    imdb_dev, imdb_test = _json(SHARED / "cosine_imdb_devtest" / "dev_data.json"), _json(SHARED / "cosine_imdb_devtest" / "test_data.json")
    agnews_test, imdb_test = take(agnews_test, 800), take(imdb_test, 800)
    return {
        "agnews": {"pool": take(agnews_dev, 3000), "target": agnews_test[500:], "test": agnews_test[:500]},
        "imdb": {"pool": take(imdb_dev, 2000), "target": imdb_test[500:], "test": imdb_test[:500]},
        "sms": {"pool": take(_sms("train"), 3000), "target": take(_sms("valid"), 300), "test": _sms("test")},
        "trec": {"pool": take(_trec("train"), 3000), "target": take(_trec("valid"), 300), "test": take(_trec("test"), 500)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--targets", nargs="+", default=["sms", "trec", "control"])
    parser.add_argument("--out", type=Path, default=None, help="also write every row as JSON lines")
    args = parser.parse_args()
    console = Console(width=200)
    data = load()
    offset = dict(zip(DOMAINS, np.cumsum([0] + list(DOMAINS.values()))[:-1].tolist()))
    order = [(dom, part) for dom in DOMAINS for part in ("pool", "target", "test")]
    texts = [t for dom, part in order for t, _ in data[dom][part]]
    labels = np.array([y + offset[dom] for dom, part in order for _, y in data[dom][part]])
    where = np.array([f"{dom}:{part}" for dom, part in order for _ in data[dom][part]])
    console.print(f"encoding {len(texts)} texts (TF-IDF and static MiniLM)")
    X = tfidf_features(texts, TfidfConfig(ngram_max=1, max_features=20_000))
    E = StaticEncoder().encode(texts)
    pool = np.flatnonzero(np.char.endswith(where.astype(str), ":pool"))
    pool_domain = np.array([w.split(":")[0] for w in where[pool]])
    rows = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        noisy = labels[pool].copy()
        flip = rng.random(len(pool)) < 0.2
        for i in np.flatnonzero(flip):
            dom = pool_domain[i]
            local = noisy[i] - offset[dom]
            noisy[i] = offset[dom] + (local + rng.integers(1, DOMAINS[dom])) % DOMAINS[dom]
        for target_name in args.targets:
            if target_name == "control":
                candidates = np.flatnonzero(np.char.endswith(where.astype(str), ":target"))
                target = rng.choice(candidates, 300, replace=False)
                tests = {dom: np.flatnonzero(where == f"{dom}:test") for dom in DOMAINS}
            else:
                target = np.flatnonzero(where == f"{target_name}:target")
                tests = {target_name: np.flatnonzero(where == f"{target_name}:test")}
            largest = int(round(max(BUDGETS) * len(pool)))
            started = time.perf_counter()
            color = ColorFilter(random_state=seed).fit(X[pool], noisy, X[target], labels[target])
            seconds = time.perf_counter() - started
            shares = np.bincount(labels[target], minlength=labels.max() + 1)
            select = {  # method -> (budget -> chosen pool rows), seconds
                "color_filter": (lambda c: color.select(c), seconds),
                "color_balanced": (lambda c: color.select(c, labels=noisy, class_shares=shares), seconds),
            }
            unguarded = copy.copy(color)  # the same scores, ranked without the agreement guard
            unguarded.eligible_ = np.ones(len(pool), dtype=bool)
            select["color_no_guard"] = (lambda c: unguarded.select(c), seconds)
            started = time.perf_counter()
            lm = LMColorFilter(random_state=seed).fit([texts[i] for i in pool], None, [texts[i] for i in target], None)
            select["color_lm"] = (lambda c: lm.select(c), time.perf_counter() - started)
            started = time.perf_counter()
            gio = GIO(v_init="jump", stop="never", max_points=largest, random_state=seed).fit(E[pool], None, E[target], None)
            select["gio_jump"] = (lambda c: gio.selected_[:c], time.perf_counter() - started)
            random_order = rng.permutation(len(pool))
            select["random"] = (lambda c: random_order[:c], 0.0)
            for budget in BUDGETS:
                count = int(round(budget * len(pool)))
                for method, (choose, seconds) in select.items():
                    chosen = choose(count)
                    model = LogisticRegression(max_iter=2000).fit(X[pool[chosen]], noisy[chosen])
                    scores = []
                    for dom, test in tests.items():
                        cols = [c for c, k in enumerate(model.classes_) if offset[dom] <= k < offset[dom] + DOMAINS[dom]]
                        if not cols:
                            scores.append(0.0)
                            continue
                        proba = model.predict_proba(X[test])[:, cols]
                        pred = model.classes_[cols][proba.argmax(1)]
                        scores.append(float((pred == labels[test]).mean()))
                    row = {"seed": seed, "target": target_name, "budget": budget, "method": method,
                           "accuracy": float(np.mean(scores)), "seconds": seconds,
                           "target_share": float((pool_domain[chosen] == target_name).mean()) if target_name != "control" else float("nan"),
                           "noisy_share": float(flip[chosen].mean()),
                           "largest_class_share": float(np.bincount(noisy[chosen]).max() / count)}
                    rows.append(row)
                    console.print(f"seed {seed} target {target_name} budget {budget:.0%} {method:13s} "
                                  f"acc {row['accuracy']:.3f} target share {row['target_share']:.2f} "
                                  f"noisy {row['noisy_share']:.2f} largest class {row['largest_class_share']:.2f} "
                                  f"{seconds:.1f}s", highlight=False)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = Table(title=f"Targeted selection, mean over seeds {args.seeds} (pool {len(pool)}, 20 % noisy labels)")
    for col in ("target", "budget", "method", "accuracy", "vs random", "target share", "noisy share",
                "largest class", "seconds"):
        table.add_column(col, justify="right")
    for target_name in args.targets:
        for budget in BUDGETS:
            group = [r for r in rows if r["target"] == target_name and r["budget"] == budget]
            base = np.mean([r["accuracy"] for r in group if r["method"] == "random"])
            for method in dict.fromkeys(r["method"] for r in group):
                mine = [r for r in group if r["method"] == method]
                acc = np.mean([r["accuracy"] for r in mine])
                table.add_row(target_name, f"{budget:.0%}", method, f"{acc:.3f}", f"{acc - base:+.3f}",
                              f"{np.mean([r['target_share'] for r in mine]):.2f}",
                              f"{np.mean([r['noisy_share'] for r in mine]):.2f}",
                              f"{np.mean([r['largest_class_share'] for r in mine]):.2f}",
                              f"{np.mean([r['seconds'] for r in mine]):.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
