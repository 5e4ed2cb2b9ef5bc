"""One run: read both sides, plan, gate, apply, record; saved plans; alerting after a run."""
