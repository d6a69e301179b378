"""Semantics: per-pixel labels and features lifted onto Gaussians (text matching comes later)."""
