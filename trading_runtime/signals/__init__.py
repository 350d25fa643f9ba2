"""Signals: the combiner of indicator evidence and the accuracy scoring against baselines."""
