"""The reward learned from preferences between segments (Christiano et al. 2017): config.py and model.py."""
