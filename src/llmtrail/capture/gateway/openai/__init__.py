"""OpenAI's wire format: its routes (`api`) and the reader of its responses (`outcome`)."""
