"""The per-symbol trading process that runs in every trading pod."""
