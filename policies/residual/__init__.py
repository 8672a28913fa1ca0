"""Residual off-policy RL (ResFiT recipe): residual actors, critic ensemble, n-step replay, losses."""
