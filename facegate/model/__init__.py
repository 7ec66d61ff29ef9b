"""Siamese verification models: architectures, the model directory format, embedders."""
