# Rumor's gossip core: memory-bounded, sans-IO, the same file on a board, in
# the unix-port tests and in the CPython simulator.
from .config import Config
from .gossip import Gossip, Message

__version__ = "0.1.0"
__all__ = ["Config", "Gossip", "Message"]
