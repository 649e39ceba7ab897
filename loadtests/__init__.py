"""Load, soak and service benchmarks: the Locust mix and helpers shared by the scripts/ drivers."""
