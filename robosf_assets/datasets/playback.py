"""Replay and render a recorded episode top-down (PNG, optionally an animated GIF).

Datasets store observations, not world states. An episode depends only on its seed and
its actions, so :func:`replay_episode` rebuilds the world with
``make_robot_env(scenario, seed, **env_overrides)`` (both from the manifest), applies the
recorded actions and reads the robot and pedestrian positions after every step. It also
compares the replayed observations with the recorded ones: ``Replay.matches_recording``
tells whether the picture shows what was really recorded.

Rendering uses matplotlib's Agg canvas directly (no pyplot, no global backend switch) for
the PNG and pillow for the GIF frames; files are written through ``artifacts.atomic_save``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosf_assets.artifacts import atomic_save
from robosf_assets.benchmark.episodes import read_episodes_jsonl
from robosf_assets.datasets.load import DatasetError, load_arrays, read_manifest
from robosf_assets.datasets.schema import EPISODES_NAME
from robosf_assets.envs import make_robot_env
from robosf_assets.sim.scenario import Scenario, get_scenario

__all__ = ["Rendered", "Replay", "render_episode", "replay_episode"]

_JUMP_M = 1.5  # a pedestrian moving farther than this in one step respawned: break its track


@dataclass
class Replay:
    """World states of one replayed episode (``T`` steps, ``P`` pedestrians)."""

    scenario: Scenario
    seed: int
    episode_index: int
    robot: np.ndarray
    """(T + 1, 5): x, y, heading, linear speed, angular speed."""
    peds: np.ndarray
    """(T + 1, P, 2) pedestrian positions."""
    goal: np.ndarray
    """(2,) goal position."""
    goal_radius: float
    robot_radius: float
    ped_radius: float
    dt: float
    """Seconds per step."""
    outcome: str
    episode_return: float
    matches_recording: bool
    max_obs_error: float
    """Largest absolute difference between replayed and recorded observations."""


@dataclass
class Rendered:
    png: Path
    gif: Path | None
    replay: Replay


def replay_episode(iter_dir: str | os.PathLike[str], episode_index: int) -> Replay:
    """Re-simulate episode ``episode_index`` of a dataset from its seed and actions.

    :raises DatasetError: for an unreadable dataset or an index out of range.
    """
    iter_dir = Path(iter_dir)
    manifest = read_manifest(iter_dir)
    arrays = load_arrays(iter_dir)
    n = len(arrays["episode_lengths"])
    if not 0 <= episode_index < n:
        raise DatasetError(
            f"episode index {episode_index} out of range: {iter_dir} holds {n} episodes (0..{n - 1})"
        )
    records = read_episodes_jsonl(iter_dir / EPISODES_NAME)
    seed = int(records[episode_index]["seed"])
    scenario = str(manifest["scenario"])
    overrides = dict(manifest.get("env_overrides") or {})
    t = int(arrays["episode_lengths"][episode_index])
    s = int(arrays["episode_starts"][episode_index])
    o = int(arrays["obs_starts"][episode_index])
    actions = arrays["actions"][s : s + t]
    recorded = arrays["observations"][o : o + t + 1]

    env = make_robot_env(scenario, seed=seed, **overrides)
    obs, _ = env.reset()
    world = env.world
    robot = np.empty((t + 1, 5))
    peds = np.empty((t + 1, world.n_peds, 2))
    replayed = np.empty_like(recorded)
    robot[0], peds[0], replayed[0] = world.robot[0], world.ped_pos[0], obs
    goal = world.robot_goal[0].copy()
    info: dict = {}
    for k in range(t):
        obs, _, terminated, truncated, info = env.step(actions[k])
        robot[k + 1], peds[k + 1], replayed[k + 1] = world.robot[0], world.ped_pos[0], obs
        if (terminated or truncated) and k < t - 1:
            break  # diverged: the replay ended early; the error below shows it
    err = float(np.max(np.abs(replayed - recorded))) if replayed.size else 0.0
    metrics = info.get("episode_metrics", {})
    return Replay(
        scenario=get_scenario(scenario),
        seed=seed,
        episode_index=episode_index,
        robot=robot,
        peds=peds,
        goal=goal,
        goal_radius=float(world.params.goal_radius),
        robot_radius=float(world.params.robot_radius),
        ped_radius=float(world.params.ped_radius),
        dt=float(world.params.dt),
        outcome=str(metrics.get("outcome", "diverged")),
        episode_return=float(np.sum(arrays["rewards"][s : s + t], dtype=np.float64)),
        matches_recording=bool(np.array_equal(replayed, recorded)),
        max_obs_error=err,
    )


def _broken_track(xy: np.ndarray) -> np.ndarray:
    """Insert NaN where a pedestrian jumped (respawn) so the line is not drawn across."""
    jumps = np.linalg.norm(np.diff(xy, axis=0), axis=1) > _JUMP_M
    if not jumps.any():
        return xy
    out = []
    for k in range(len(xy)):
        if k > 0 and jumps[k - 1]:
            out.append([np.nan, np.nan])
        out.append(xy[k])
    return np.asarray(out)


def _draw_png(replay: Replay, title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    sc = replay.scenario
    fig = Figure(figsize=(6.4, 6.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for x1, y1, x2, y2 in sc.walls:
        ax.plot([x1, x2], [y1, y2], color="black", linewidth=2.0, solid_capstyle="round")
    for rects, colour in ((sc.robot_start, "tab:blue"), (sc.robot_goal, "tab:green")):
        for x0, y0, x1, y1 in rects:
            ax.add_patch(
                Rectangle(
                    (x0, y0), x1 - x0, y1 - y0, facecolor=colour, alpha=0.08, edgecolor="none"
                )
            )
    for p in range(replay.peds.shape[1]):
        track = _broken_track(replay.peds[:, p])
        ax.plot(track[:, 0], track[:, 1], color="tab:red", alpha=0.25, linewidth=0.8)
        ax.add_patch(
            Circle(tuple(replay.peds[-1, p]), replay.ped_radius, color="tab:red", alpha=0.5)
        )
    xy = replay.robot[:, :2]
    segments = np.stack([xy[:-1], xy[1:]], axis=1)
    lc = LineCollection(segments, cmap="viridis", linewidth=2.5)
    lc.set_array(np.arange(len(segments)) * replay.dt)
    ax.add_collection(lc)
    fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04, label="time (s)")
    ax.plot(*xy[0], marker="o", color="tab:blue", markersize=7, label="start")
    ax.add_patch(
        Circle(tuple(xy[-1]), replay.robot_radius, fill=False, color="black", linewidth=1.2)
    )
    ax.add_patch(Circle(tuple(replay.goal), replay.goal_radius, color="tab:green", alpha=0.3))
    ax.plot(*replay.goal, marker="*", color="tab:green", markersize=12, label="goal")
    xmin, ymin, xmax, ymax = sc.bounds()
    ax.set_xlim(xmin - 0.5, xmax + 0.5)
    ax.set_ylim(ymin - 0.5, ymax + 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _gif_frames(replay: Replay, size_px: int = 240, max_frames: int = 80) -> tuple[list, int]:
    """Small palette frames (every ``stride``-th step) and the stride."""
    from PIL import Image, ImageDraw

    sc = replay.scenario
    xmin, ymin, xmax, ymax = sc.bounds()
    span = max(xmax - xmin, ymax - ymin) + 1.0
    scale = size_px / span

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - xmin + 0.5) * scale, size_px - (y - ymin + 0.5) * scale

    def disc(draw, centre, radius, fill) -> None:
        cx, cy = px(*centre)
        r = max(radius * scale, 1.5)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)

    t = len(replay.robot)
    stride = max(1, int(np.ceil(t / max_frames)))
    indices = list(range(0, t, stride))
    if indices[-1] != t - 1:
        indices.append(t - 1)
    frames = []
    for k in indices:
        img = Image.new("P", (size_px, size_px), color=0)
        img.putpalette(
            [255, 255, 255, 0, 0, 0, 200, 230, 200, 220, 60, 60, 40, 90, 200, 150, 150, 150]
            + [0] * 750
        )
        draw = ImageDraw.Draw(img)
        for x1, y1, x2, y2 in sc.walls:
            draw.line([px(x1, y1), px(x2, y2)], fill=1, width=2)
        disc(draw, replay.goal, replay.goal_radius, 2)
        trail = [px(*p) for p in replay.robot[: k + 1, :2]]
        if len(trail) > 1:
            draw.line(trail, fill=5, width=1)
        for p in replay.peds[k]:
            disc(draw, p, replay.ped_radius, 3)
        disc(draw, replay.robot[k, :2], replay.robot_radius, 4)
        frames.append(img)
    return frames, stride


def render_episode(
    iter_dir: str | os.PathLike[str],
    episode_index: int,
    out_png: str | os.PathLike[str],
    gif: bool = False,
    *,
    overwrite: bool = True,
) -> Rendered:
    """Render episode ``episode_index`` of a dataset to ``out_png`` (and ``.gif`` beside it).

    Walls, start and goal areas, pedestrian tracks (faint lines, final positions as
    discs), the robot path coloured by time, the start and the goal circle. The title
    names the dataset, episode, seed, outcome and whether the replay matched the
    recording. Output files are re-rendered freely (``overwrite=True`` by default):
    they are derived views, not data.

    :return: the written paths and the :class:`Replay` they show.
    """
    iter_dir = Path(iter_dir)
    replay = replay_episode(iter_dir, episode_index)
    match = (
        "replay matches recording"
        if replay.matches_recording
        else f"REPLAY DIVERGED (max obs error {replay.max_obs_error:.3g})"
    )
    title = (
        f"{replay.scenario.name} {iter_dir.name} episode {episode_index} (seed {replay.seed}): "
        f"{replay.outcome}, {len(replay.robot) - 1} steps, return {replay.episode_return:.2f}\n{match}"
    )
    png_bytes = _draw_png(replay, title)
    out_png = Path(out_png)
    atomic_save(out_png, lambda tmp: tmp.write_bytes(png_bytes), overwrite=overwrite)
    gif_path = None
    if gif:
        frames, stride = _gif_frames(replay)
        frame_ms = round(1000 * replay.dt * stride)  # real time
        gif_path = out_png.with_suffix(".gif")
        atomic_save(
            gif_path,
            lambda tmp: frames[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=frames[1:],
                duration=frame_ms,
                loop=0,
            ),
            overwrite=overwrite,
        )
    return Rendered(png=out_png, gif=gif_path, replay=replay)
