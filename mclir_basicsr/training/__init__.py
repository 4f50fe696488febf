"""What every method's training step uses: checkpoints and resume state, the divergence guard, mixed precision,
compile, progressive patches, optimizers and schedulers, random states and cross-rank helpers."""
