"""Node side of cloudlet: the node agent and its stand-ins (hollow nodes)."""
