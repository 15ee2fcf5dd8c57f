"""Training: strategies, optimisers, checkpoints, TensorBoard and the custom loop."""
