"""The feature layer: the declared schema, the FeatureSource protocol, events and the
online overlay, the agent roster, synthetic customers and the Feast workspace. It knows
nothing of decisions (policies), training or serving."""
