"""Core controllers: one module per control loop."""
