"""Local stacks of real processes (private Redis, workers, the emulator) for the demo, the
tests and the benchmarks: one harness, so all three run the product as production does.

processes  RedisServer, WorkerProcess (`from_settings`), free_port
env        Settings -> IG_OUTBOUND_* environment (`settings_env`, `process_env`), `tuned`,
           `fleet_settings`, `client_view`
wait       `wait_until` (and `wait_until_async`), `wait_registered`
intents    `make_intent`, `text_intent`
leaks      the secrets scan of a stack's Redis and logs
chaos      ChaosStack (`fast_settings`, `retrying_redis`); chaos_run: `run_chaos`, ChaosPlan,
           ChaosReport; ledger: Ledger
demo       `ig-outbound demo`
"""
