# Bucket: the token-bucket arithmetic the rate limits share (peers.py per
# sender, origins.py per origin).  Tokens are counted in thousandths of a
# frame, so a rate in frames per second fills rate thousandths a millisecond
# and every value stays a small int on a 32-bit board.
from .ticks import MASK


def level(tok, at, now, rate, cap):
    """The tokens a bucket holding tok at tick at has at tick now, filled at
    rate per second, at most cap."""
    el = (now - at) & MASK
    lim = cap // rate + 1  # ms that fill an empty bucket: el * rate stays small
    t = tok + (el if el < lim else lim) * rate
    return t if t < cap else cap
