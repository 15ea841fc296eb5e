"""The gateway: provider wire formats in, the same wire format out, one record per call.

Hot routes are plain ASGI callables (no per-request middleware objects). Each route forwards
only to providers that speak its wire format; the built-in ``sim`` provider speaks all.
Recording never slows or breaks the call: the finished record is handed to the pipeline's
bounded queue without waiting, and a failure to record is counted, not raised.
"""
