"""facegate: face-verification access control for doors."""

__version__ = "0.1.0"
