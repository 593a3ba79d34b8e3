"""Vowpal Wabbit behind one adapter: the policy, its shared examples, bulk learning and
the one place a reward becomes VW's cost."""
