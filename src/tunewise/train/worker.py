"""One training process under `accelerate launch` (started by `tunewise.train.launch`, or by hand):

    accelerate launch --config_file runs/RUN/accelerate.yaml -m tunewise.train.worker runs/RUN/config.yaml --run-id RUN

Every process runs the same `tunewise.train.train`; the Trainer finds the process group from the
environment accelerate sets. Process 0 records the run in the workspace store and draws progress;
the others write their (identical) bookkeeping to a throwaway store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one tunewise training process under accelerate launch")
    parser.add_argument("config", help="the run's config.yaml (a TrainConfig)")
    parser.add_argument("--run-id", required=True, help="the run id chosen by the launcher")
    args = parser.parse_args(argv)

    from tunewise.config import load_yaml_model
    from tunewise.errors import TunewiseError
    from tunewise.store import Store
    from tunewise.train.config import TrainConfig
    from tunewise.train.local import train

    rank = int(os.environ.get("RANK", "0"))
    config = load_yaml_model(args.config, TrainConfig, section="train")
    try:
        if rank == 0:
            train(config, run_id=args.run_id, progress=sys.stderr.isatty())
        else:
            with tempfile.TemporaryDirectory(prefix=f"tunewise-rank{rank}-") as tmp:
                store = Store.open(f"sqlite:///{tmp}/rank.db")
                try:
                    train(config, run_id=args.run_id, store=store, progress=False)
                finally:
                    store.close()
    except TunewiseError as exc:
        print(f"error (rank {rank}): {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
