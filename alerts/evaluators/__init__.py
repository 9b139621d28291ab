"""Pure rule evaluators: (rule, stored state, one observation) -> (new state, decisions).

One module per rule family. State is a small frozen dataclass that round-trips through JSON (the
`rule_state` table), so a restarted worker carries on exactly where the last one stopped.
"""
