"""Rollout engines: one interface (`RolloutEngine`), a transformers engine and a vLLM engine."""
