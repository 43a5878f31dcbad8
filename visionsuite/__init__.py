"""visionsuite core: the pieces every method shares (errors, run pipeline, phases, callbacks)."""
