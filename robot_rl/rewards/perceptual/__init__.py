"""The perceptual reward from a few demonstrations (Sermanet et al. 2017): config.py and model.py."""
