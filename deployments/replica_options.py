"""Replica options the deployments share; each deployment's own defaults sit in its decorator,
so `serve.run(build_app(args))` and `serve run serve_config.cpu.yaml` deploy the same thing and
a Serve config lists only what it changes."""

# Methods that take about a millisecond (a store statement, a parse) run on the replica's event
# loop rather than through a thread-pool hop that costs more than they do.
SYNC_METHODS_ON_THE_EVENT_LOOP = {"env_vars": {"RAY_SERVE_RUN_SYNC_IN_THREADPOOL": "0"}}
