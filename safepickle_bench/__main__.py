"""Command-line entry: `analyze` and `scan` subcommands, otherwise a Hydra run (`task=`, `experiment=`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand or to the Hydra application and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "analyze":
        from safepickle_bench.cli.analyze import main as analyze_main

        return analyze_main(args[1:])
    if args and args[0] == "scan":
        from safepickle_bench.cli.scan import main as scan_main

        return scan_main(args[1:])
    from safepickle_bench.pipeline.app import hydra_main

    sys.argv = [sys.argv[0], *args]
    hydra_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
