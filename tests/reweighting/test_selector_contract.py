"""Every registered selection method keeps the one contract (reweighting/select/base.py: Selector)."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.reweighting.select.registry import SELECTORS

WORDS = {0: "goal match team score league", 1: "stock market price trade bank", 2: "song album band music tour"}


def _data(seed: int = 0):
    """A pool of three topics (features and texts); the target is all topic 0."""
    rng = np.random.default_rng(seed)
    y_pool = np.repeat([0, 1, 2], 60)
    X_pool = rng.normal(0, 1, (180, 6)) + np.eye(3, 6)[y_pool] * 4
    y_target = np.zeros(15, int)
    X_target = rng.normal(0, 1, (15, 6)) + np.eye(3, 6)[0] * 4
    text = lambda label: " ".join(rng.choice(WORDS[label].split(), 6))  # noqa: E731
    return (X_pool, y_pool, [text(y) for y in y_pool]), (X_target, y_target, [text(y) for y in y_target])


def _settings(name: str, lm: bool = False):
    settings = {"color_filter": {"n_folds": 3}, "gio": {}, "random": {}}[name]
    if lm:  # CoLoR-Filter's language-model mode: reads texts, not features
        settings = {"mode": "lm", "n_folds": 2, "lm_width": 16, "lm_layers": 1, "lm_max_len": 48,
                    "lm_prior_epochs": 1, "lm_finetune_epochs": 2}
    return SELECTORS[name].model_validate(settings)


def _select(name: str, budget: int = 30, seed: int = 0, lm: bool = False):
    (X_pool, y_pool, t_pool), (X_target, y_target, t_target) = _data()
    settings = _settings(name, lm)
    pool, target = (t_pool, t_target) if settings.reads == "texts" else settings.prepare(X_pool, X_target)
    model = settings.build(random_state=seed, count=budget, n_pool=len(y_pool))
    model.fit(pool, y_pool, target, y_target)
    return settings.choose(model, budget, y_pool, y_target), y_pool, model


CASES = [(name, False) for name in sorted(SELECTORS)] + [("color_filter", True)]


@pytest.mark.parametrize("name, lm", CASES)
def test_the_budget_in_distinct_pool_indices(name, lm):
    chosen, y_pool, _ = _select(name, lm=lm)
    assert chosen.dtype.kind == "i" and len(chosen) == 30 == len(set(chosen.tolist()))
    assert chosen.min() >= 0 and chosen.max() < len(y_pool)


@pytest.mark.parametrize("name, lm", CASES)
def test_the_same_seed_selects_the_same_items(name, lm):
    assert np.array_equal(_select(name, lm=lm)[0], _select(name, lm=lm)[0])


@pytest.mark.parametrize("name", sorted(set(SELECTORS) - {"random"}))
def test_the_selection_leans_to_the_target(name):
    chosen, y_pool, model = _select(name)
    assert (y_pool[chosen] == 0).mean() > 0.6, name  # a third of the pool is like the target
    scores = getattr(model, "scores_", None)
    if scores is not None:  # higher = more useful to the target
        assert scores[y_pool == 0].mean() > scores[y_pool != 0].mean()


def test_random_is_uniform_over_the_pool():
    chosen, y_pool, _ = _select("random", budget=90)
    assert 0.2 < (y_pool[chosen] == 0).mean() < 0.5


@pytest.mark.parametrize("name, lm", CASES)
def test_an_empty_target_is_refused(name, lm):
    (X_pool, y_pool, t_pool), _ = _data()
    settings = _settings(name, lm)
    model = settings.build(random_state=0, count=10, n_pool=len(y_pool))
    pool = t_pool if lm else X_pool
    if name == "random":
        with pytest.raises(ValueError, match="empty"):
            model.fit(pool[:0], y_pool[:0], pool[:0], y_pool[:0])
    else:
        with pytest.raises(ValueError):
            model.fit(pool, y_pool, pool[:0], y_pool[:0])
