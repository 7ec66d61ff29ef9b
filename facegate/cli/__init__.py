"""Command-line entry point and its command modules."""
