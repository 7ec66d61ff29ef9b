"""The long-running access daemon."""
