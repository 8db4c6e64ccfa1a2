"""PyTorch side of MineSAR: networks, losses, training, inference and checkpoints.

Nothing here is imported unless a step needs torch, so the plugin loads without it.
"""
