"""Mail servers on this machine: the demo and the capturing sink."""
