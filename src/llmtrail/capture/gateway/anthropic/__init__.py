"""Anthropic's wire format: its routes (`api`) and its Messages payloads (`models`)."""
