"""The decision core: typed records, the Policy protocol, rules, the featuriser, the one
draw (``policies.draw``), the policies (baselines, torch, VW) and their registry. It knows
nothing of features, training, serving or the simulator."""
