"""The learned success classifier reward (SERL / HIL-SERL): config.py and model.py."""
