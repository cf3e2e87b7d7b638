"""Training of the shipped models; each task module registers a `mslesionai train TASK`."""
