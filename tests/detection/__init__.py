"""Tests of the CenterNet detection pieces (issue 5)."""
