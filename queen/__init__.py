"""The queen: supervises a pool of providers, admits them, watches liveness and proves their GPUs."""
