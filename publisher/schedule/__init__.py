"""Schedule: decides *when* (slots, catch-up, send windows, the daemon, the slot lease); the
work itself is the pipeline's."""
