"""The journey simulator: offline evaluation that knows the truth.

- :mod:`simulator.environment` — the customer-journey world (Gymnasium's ``reset``/``step``),
  every step carrying the true expected reward of every candidate action;
- :mod:`simulator.customers`, :mod:`simulator.economics` — customers' evolving observable
  features and hidden preferences; what an action is worth;
- :mod:`simulator.run` — any policy kind in process, learning online; regret, channel mix;
- :mod:`simulator.http_client` — ``--target URL``: drive a live Maestro over its HTTP API;
- :mod:`simulator.routing`, :mod:`simulator.routing_target` — contact-centre routing: agents
  with hidden skill-by-case effectiveness, capacity and a continuity bonus; routers compared by
  exact regret and resolution rate, in process or through a live Maestro's ``agent_routing``;
- :mod:`simulator.bakeoff` — the supervised-to-bandit bake-off on scikit-learn datasets;
- :mod:`simulator.report`, :mod:`simulator.session` — ``maestro simulate``'s report.

Off-policy estimators are :mod:`training.ope`; their check against this simulator's truth is
:mod:`simulator.ope_check` (the simulator sits above training: it may import training, not
the reverse).
"""
