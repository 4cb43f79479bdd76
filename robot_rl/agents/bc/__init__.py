from robot_rl.agents.bc.agent import BCAgent
from robot_rl.agents.bc.config import BCConfig

__all__ = ["BCAgent", "BCConfig"]
