"""Local stacks of real processes (private Redis, workers, the emulator) for the demo, the
tests and the benchmarks: one harness, so all three run the product as production does."""
