"""Alert rules, evaluators, the alert lifecycle, notifiers and the scheduler. Imports `store` only."""
