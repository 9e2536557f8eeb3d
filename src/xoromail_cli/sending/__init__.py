"""One engine for `send` and the relay: the plan, the batch, the sender, results and keys."""
