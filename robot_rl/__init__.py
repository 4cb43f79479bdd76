"""robot_rl: reward learning for real robots and their MuJoCo simulation twin."""
