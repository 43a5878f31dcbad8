"""Tests of the CenterNet detection pieces (arXiv:1904.08189)."""
