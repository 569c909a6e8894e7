"""tagd: the appliance logic of a check-in reader (pure core plus the shell that wires it)."""

__version__ = "0.1.0"
