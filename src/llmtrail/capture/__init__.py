"""Capture: everything that turns a model call into an `InvocationRecord`.

The gateway (``gateway/``) speaks the providers' wire formats so that pointing an existing
client's base URL at llmtrail is the whole integration.
"""
