"""Training of one segmentation run: loss, schedules, checkpoints and the loop."""
