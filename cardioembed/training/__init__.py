"""Training: the embedding models and the LoRA + InfoNCE recipe (notebook 02)."""
