"""Person re-identification data: Market-1501 / DukeMTMC-reID layouts, the SCT split, samplers, DataModule."""
