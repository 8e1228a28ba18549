"""digitsum-edge: read a handwritten digit, add a number to it, on the edge."""

__version__ = "0.1.0"
