"""The learner loop: demos, online interaction, RLPD/SAC updates, evaluation and checkpoints."""
