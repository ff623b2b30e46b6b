"""Training stage: LoRA + InfoNCE (GradCache, gathered negatives) on records in the synthesis format."""
