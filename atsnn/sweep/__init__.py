"""Design-space sweeps on Dask (``atsnn sweep``): spec, plan, store, execution, Pareto fronts.

- :mod:`atsnn.sweep.spec`: the TOML spec and its strict schema (one-line errors with key paths);
- :mod:`atsnn.sweep.plan`: points and the shared jobs that compute them, keyed by content hashes;
- :mod:`atsnn.sweep.tasks`: what the workers run (compile, simulate, rates, estimate);
- :mod:`atsnn.sweep.store`: the resumable point store (output kind ``sweep``);
- :mod:`atsnn.sweep.run`: execution on an embedded LocalCluster or an existing scheduler;
- :mod:`atsnn.sweep.pareto`: Pareto fronts, their plots and ``index.html``.

Heavy imports (Dask, the compiler, the simulator) happen inside the functions that need them.
"""
