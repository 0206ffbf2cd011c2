"""bench/run's driver: build, start, load, report (one module per concern)."""
