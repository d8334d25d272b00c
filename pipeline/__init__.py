"""The pipeline model: the config file, its check, and running stages from the registry (CLI, flows and notebooks)."""
