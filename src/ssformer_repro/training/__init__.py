"""Training of one segmentation run: the loop (loop.py) first, then its settings, parts,
checkpoints and resume policy, loss, schedules, devices, DDP and resource failures."""
