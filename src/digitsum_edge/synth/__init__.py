"""Camera-like frames of MNIST digits for demos, tests and benchmarks (needs the bundled data set)."""
