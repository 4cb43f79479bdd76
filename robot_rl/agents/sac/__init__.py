from robot_rl.agents.sac.agent import SACAgent
from robot_rl.agents.sac.config import SACConfig

__all__ = ["SACAgent", "SACConfig"]
