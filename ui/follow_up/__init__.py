"""The parts of the Follow-up page: one call form per discharge to call."""
