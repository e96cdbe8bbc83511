"""Neural network modules (audio encoder, text encoder, match heads, captioner).

Each module matches its published reference implementation where one exists, so official
checkpoints load unchanged; none of them imports the CLI or the featurization jobs.
"""
