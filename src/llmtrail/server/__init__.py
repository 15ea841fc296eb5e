"""The ASGI server: gateway hot routes as plain ASGI, everything else through Starlette.

`Runtime` owns the data directory (DuckDB, spool, objects) and the pipeline; `create_app`
wires routes to it; `serve` runs it under uvicorn (uvloop, httptools) and handles SIGTERM:
stop accepting, drain in-flight calls, flush queue → spool → store, checkpoint.
"""
