"""Classic CNN/ViT baselines (extra ``cnn``): trained on aligned face crops of the subject's
track, taken from the same annotation cache the vision-LLM systems use, and scored by the same
harness (a checkpoint predicts :class:`sovtp.records.Prediction` rows)."""
