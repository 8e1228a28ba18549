"""Stage 1: train the dual-output model (`digitsum_edge.train.loop.run`)."""
