"""Networks, normalization, base policies, one-step heads and the residual learner (to be built: issues 4-5)."""
