"""Replica options the deployments share; each deployment's own defaults sit in its decorator,
so `serve.run(build_app(args))` and `serve run serve_config.cpu.yaml` deploy the same thing and
a Serve config lists only what it changes."""

# Methods that take about a millisecond (a store statement, a parse) run on the replica's event
# loop rather than through a thread-pool hop that costs more than they do.
SYNC_METHODS_ON_THE_EVENT_LOOP = {"env_vars": {"RAY_SERVE_RUN_SYNC_IN_THREADPOOL": "0"}}

# The model replica's torch computes on every core (engine/checkpoint_engine.cpu_threads) next to
# the proxy, ingress, store and Ray's own processes. With OpenMP's default wait policy each of
# torch's threads spins at every barrier between operators, and when another process holds a core
# the spinning thread waits for a preempted one: on this 2-core machine, with one busy process
# beside it, one 64-token request of the bench model took 4.7 s with 2 threads against 0.81 s with
# 1 (BENCHMARKS.md). PASSIVE threads sleep instead: 0.74 s with 2 threads in the same test. Set
# before the replica's process starts: libgomp reads it once, when torch is imported. On a GPU the
# model's work is on the device, and waiting threads that sleep cost nothing there.
MODEL_REPLICA_RUNTIME_ENV = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
