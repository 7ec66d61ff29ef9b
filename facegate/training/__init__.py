"""Datasets, training, evaluation and weight conversion (the only place that trains)."""
