"""The ``memlens`` command line: one module per subcommand, dispatched by ``main``."""
