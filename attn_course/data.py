"""Tiny synthetic data sets made on the fly for the lessons (no downloads, seeded).

Every function takes a ``torch.Generator`` (or a seed) so lessons and tests are reproducible.
"""
