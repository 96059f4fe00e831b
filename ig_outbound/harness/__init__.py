"""Local stacks of real processes (private Redis, workers, the gateway, the emulator) for the
demo, the tests and the benchmarks: one harness, so all three run the product as production
does.

processes  RedisServer, WorkerProcess and GatewayProcess (`from_settings`), ResponderProcess
           (the example auto-responder), free_port, `parse_metrics` / `metric_total`
env        Settings -> IG_OUTBOUND_* environment (`settings_env`, `process_env`), `tuned`,
           `fleet_settings`, `gateway_settings`, `client_view`
wait       `wait_until` (and `wait_until_async`), `wait_registered`
intents    `make_intent`, `text_intent`
responder  ResponderThread: the example auto-responder in a thread of this process
loop_books the inbound stream (InboundTail), the replies owed and their outcomes
leaks      the secrets scan of a stack's Redis and logs
chaos      ChaosStack (`fast_settings`, `retrying_redis`); chaos_run: `run_chaos`, ChaosPlan,
           ChaosReport; ledger: Ledger
demo       `ig-outbound demo` (demo_loop: its user -> webhook -> reply loop)
"""
