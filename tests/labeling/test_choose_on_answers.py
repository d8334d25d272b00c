"""How ``model: auto`` chooses on a person's answers: kinds of disagreement, post-stratified accuracy, and
the review queue's disagreement sample (the simulated reviewer of benchmarks/review_simulation.py uses
the same functions)."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.labeling.model import choose_on_gold, disagreement_strata, stratum_weights
from thresher.pipeline.review_queue import order_items


def test_a_kind_of_disagreement_is_which_models_side_with_which_whatever_the_classes():
    labels = np.array([[0, 1, 2, 4],
                       [0, 1, 2, 3],
                       [1, 0, 2, 3]])  # candidates x items
    strata = disagreement_strata(labels)
    assert strata[0] == strata[1] != 0  # {0, 1} against {2}, with other classes
    assert strata[2] == 0  # all agree
    assert strata[3] not in (0, strata[0])  # {1, 2} against {0}
    with pytest.raises(ValueError, match="candidates x items"):
        disagreement_strata(np.zeros(3))


def _one_hot(classes: np.ndarray) -> np.ndarray:
    return np.eye(2)[classes]


# Three candidates read column 0 of the votes: 0 says class 0 everywhere; 1 says 1 on pattern 1; 2 says 1 on
# pattern 2 and on items without votes (as a model's prior may).
CANDIDATES = [lambda L: _one_hot(np.zeros(len(L), dtype=int)),
              lambda L: _one_hot((L[:, 0] == 1).astype(int)),
              lambda L: _one_hot(np.isin(L[:, 0], [2, -1]).astype(int))]


def test_answers_count_for_the_unanswered_items_of_their_kind():
    # 1,000 items where all agree, 100 where candidate 1 stands alone (right on 60), 10 where candidate 2
    # does (right on all). On every item candidate 1 is best: 60 + 0 against candidate 2's 40 + 10.
    population = np.concatenate([np.zeros(1000), np.ones(100), np.full(10, 2)]).astype(int)[:, None]
    L_dev = np.array([1] * 10 + [2] * 10)[:, None]
    y_dev = np.array([1] * 6 + [0] * 4 + [1] * 10)  # a fair sample of pattern 1; all of pattern 2
    params = [{"model": "zero"}, {"model": "one"}, {"model": "two"}]
    plain, _ = choose_on_gold(CANDIDATES, params, (L_dev, y_dev), "accuracy")
    assert plain == 2  # 14 of 20 answers right: the rare pattern's answers count 10 times too much
    chosen, selection = choose_on_gold(CANDIDATES, params, (L_dev, y_dev), "accuracy", population=population)
    assert chosen == 1 and selection[1]["dev_accuracy"] == pytest.approx(0.6)
    # Pattern 2 is answered through: the model labels none of it, so its answers weigh nothing.
    weights = stratum_weights(np.stack([c(L_dev).argmax(axis=1) for c in CANDIDATES]),
                              np.stack([c(population).argmax(axis=1) for c in CANDIDATES]))
    assert weights[10:].sum() == 0 and weights[:10] == pytest.approx(np.full(10, 0.1))


def test_answers_on_items_without_votes_judge_no_model():
    population = np.array([[1]] * 50 + [[-1]] * 50)
    L_dev = np.array([[1]] * 20 + [[-1]] * 20)
    y_dev = np.array([1] * 12 + [0] * 8 + [1] * 20)  # candidate 2 is right on every item without votes
    params = [{"model": "zero"}, {"model": "one"}, {"model": "two"}]
    assert choose_on_gold(CANDIDATES, params, (L_dev, y_dev), "accuracy")[0] == 2  # 28 of 40
    chosen, _ = choose_on_gold(CANDIDATES, params, (L_dev, y_dev), "accuracy", population=population)
    assert chosen == 1  # 12 of the 20 that have votes


def test_the_disagreement_queue_is_a_seeded_random_sample_of_voted_items_where_models_differ():
    L = np.array([[0, -1], [1, 1], [-1, -1], [1, 0], [0, 0], [1, -1]])
    predicted = {"a": np.array([0, 1, 1, 0, 0, 1]), "b": np.array([1, 1, 0, 1, 0, 0])}
    order = order_items("disagreement", L, np.zeros(6, dtype=int), predicted=predicted, seed=0)
    assert sorted(order) == [0, 3, 5]  # item 2 has no votes; 1 and 4 agree
    orders = {tuple(order_items("disagreement", L, np.zeros(6, dtype=int), predicted=predicted, seed=s)) for s in range(20)}
    assert len(orders) > 1
