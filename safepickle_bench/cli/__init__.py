"""Command-line subcommands that do not go through Hydra (`analyze`, `scan`)."""
