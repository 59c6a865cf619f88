"""Acting on diagnoses: the remedy catalog, the planner, signed commands and the executor.

- :mod:`actions.catalog` — the 45 remedies, their parameters and bounds (``validate_params``);
- :mod:`actions.planner` — the next remedy for an incident (``Planner.decide``), with
  :mod:`actions.bandit` (learned success rates) and :mod:`actions.guardrails` (limits);
- :mod:`actions.signing` — ``build_command`` and ``verify`` for HMAC-signed commands;
- :mod:`actions.executor` — the executor service (``run_executor``), with
  :mod:`actions.runner`, :mod:`actions.store` and the handlers (:mod:`actions.handlers`,
  :mod:`actions.webhook`, :mod:`actions.command`).
"""
