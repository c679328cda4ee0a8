"""The dashboard: a web page and an HTTP API over a running session or a trade store.

`kinetic-rules run … --ui` serves it inside the session; `kinetic-rules ui --db URL`
serves a stopped or remote session's store, read-only. See docs/dashboard.md.
"""
