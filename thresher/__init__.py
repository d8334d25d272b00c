"""thresher: weak supervision and noisy-label curation from raw rows to weighted training shards."""

__version__ = "0.1.0"
