"""Acting on diagnoses: the remedy catalog, the planner, signed commands and the executor.

- :mod:`perfloop.actions.catalog` — the 45 remedies, their parameters and bounds
  (``validate_params``);
- :mod:`perfloop.actions.planner` — the next remedy for an incident (``Planner.decide``), with
  :mod:`perfloop.actions.bandit` (learned success rates) and :mod:`perfloop.actions.guardrails`
  (limits);
- :mod:`perfloop.actions.signing` — ``build_command`` and ``verify`` for HMAC-signed commands;
- :mod:`perfloop.actions.executor` — the executor service (``run_executor``), with
  :mod:`perfloop.actions.runner`, :mod:`perfloop.actions.store` and the handlers
  (:mod:`perfloop.actions.handlers`, :mod:`perfloop.actions.webhook`,
  :mod:`perfloop.actions.command`).
"""
