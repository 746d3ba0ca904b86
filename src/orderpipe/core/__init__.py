"""The pure core: input rules, validation, KPI maths and batch semantics. No I/O of its own."""
