"""Registered pretraining-corpus sources, one module each (picked up automatically)."""
