"""``lightctl bench``: benchmarks that report ratios against a floor measured in the same run."""
