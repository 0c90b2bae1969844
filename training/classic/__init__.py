"""Classic, training-free biometric baselines used as yardsticks (Miura finger-vein features and matching)."""
