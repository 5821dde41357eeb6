# Boot a Rumor node from /board.json (written by `rumor deploy`): radio,
# gossip engine and console in one asyncio loop.  Ctrl-C stops it and leaves
# the REPL (so mpremote works as usual).
import rumor.node

rumor.node.run("board.json")
