"""The shared face pipeline: decode, detect, align, quality-gate."""
