"""The benchmarks behind ``hippograph bench ...``, one module per benchmark, each with its
``add_<name>_arguments`` and ``run_<name>_command`` for :mod:`hippograph.api.cli`:

- :mod:`~hippograph.api.bench.latency` (with ``latency_measure``, ``latency_probes``),
  :mod:`~hippograph.api.bench.serve`, :mod:`~hippograph.api.bench.load` (with
  ``load_server``, ``load_driver``), :mod:`~hippograph.api.bench.encode`,
  :mod:`~hippograph.api.bench.ingest`, :mod:`~hippograph.api.bench.lifecycle`,
  :mod:`~hippograph.api.bench.assistant` (with ``assistant_history``),
  :mod:`~hippograph.api.bench.supersession`,
  :mod:`~hippograph.api.bench.vectors`, :mod:`~hippograph.api.bench.locomo`,
  :mod:`~hippograph.api.bench.crash` (with ``crash_server``, ``crash_commands``);
- what they share, by public names only: :mod:`~hippograph.api.bench.synthetic` (the
  synthetic namespace), :mod:`~hippograph.api.bench.common` (stores, progress, the
  build and its manifest, timing helpers) and :mod:`~hippograph.api.bench.processes`
  (hippograph's commands and server as subprocesses, a GraphQL client).

Nothing is imported here: importing one of them loads only what that one needs.
"""
