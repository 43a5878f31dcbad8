"""Person re-identification networks and losses: MCNL (arXiv:1909.10848) and the batch-hard triplet baseline."""
