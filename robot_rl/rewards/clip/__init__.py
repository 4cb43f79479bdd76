"""The zero-shot CLIP reward (VLM-RM): config.py (no open_clip import) and model.py."""
