"""Render a recorded dataset episode: ``python -m robosf_assets.replay <dataset> --episode N``.

``<dataset>`` is an iteration directory (``output/datasets/<scenario>/iter-NNNN``) or a
scenario directory, in which case its newest complete iteration is used. The PNG goes to
``--out`` (default ``output/playback/<scenario>/<iter>-episode-NNNN.png``); ``--gif``
writes an animated GIF beside it. Exit status: 0 when the replay reproduced the recorded
observations, 1 when it diverged (the picture is still written), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robosf_assets.artifacts import MANIFEST_NAME, list_iterations, output_root
from robosf_assets.logs import configure_logging


def _resolve(dataset: Path) -> Path:
    if (dataset / MANIFEST_NAME).is_file():
        return dataset
    iterations = list_iterations(dataset, require_manifest=True)
    if iterations:
        return iterations[-1]
    raise SystemExit(
        f"error: {dataset} is neither a dataset iteration (no {MANIFEST_NAME}) nor a scenario "
        "directory holding complete iterations"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robosf_assets.replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "dataset", type=Path, help="dataset iteration directory (or a scenario directory)"
    )
    parser.add_argument(
        "--episode", type=int, default=0, help="episode index within the dataset (default 0)"
    )
    parser.add_argument(
        "--gif", action="store_true", help="also write an animated GIF beside the PNG"
    )
    parser.add_argument("--out", type=Path, default=None, help="PNG path to write")
    args = parser.parse_args(argv)
    configure_logging()

    from robosf_assets.datasets.load import DatasetError
    from robosf_assets.datasets.playback import render_episode

    iter_dir = _resolve(args.dataset)
    out = (
        args.out
        or output_root()
        / "playback"
        / iter_dir.parent.name
        / f"{iter_dir.name}-episode-{args.episode:04d}.png"
    )
    try:
        rendered = render_episode(iter_dir, args.episode, out, gif=args.gif)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(rendered.png)
    if rendered.gif:
        print(rendered.gif)
    r = rendered.replay
    if not r.matches_recording:
        print(
            f"warning: replay diverged from the recording (max observation error {r.max_obs_error:.3g})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
