"""Light trainers over cached features: one loop, one task module per ``--task``."""
