"""The gateway (`ig-outbound gateway`): Instagram's webhooks in, and an HTTP intake for
producers that cannot speak Redis. ASGI (FastAPI), the `[gateway]` extra.

    GET  /webhooks/instagram   the subscription handshake
    POST /webhooks/instagram   a signed delivery: verified, acknowledged, recorded after
    POST /v1/intents           one or many intents (bearer token): the Python client's answers
    GET  /healthz, /readyz     liveness (the process), readiness (Redis and the processor)
    GET  /metrics              Prometheus
"""
