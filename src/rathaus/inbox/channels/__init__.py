"""Input channels of the Posteingang: each turns what it receives into an ``IncomingItem``."""
