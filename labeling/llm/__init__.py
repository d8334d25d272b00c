"""LLM-prompted labeling functions: prompts, verbalisers, backends and the exactly-once response cache."""
