"""Lightning callbacks of the suite's methods: the files and pictures a run writes (genotypes and cell diagrams,
detections, retrieval rankings, label volumes, pruned structures...). A module declares the ones it needs
(``configure_callbacks``), so its steps stay reusable without them."""
