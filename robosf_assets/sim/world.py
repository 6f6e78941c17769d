"""``BatchedWorld``: B independent crowd-navigation worlds advanced by one kernel call.

No gym, torch or Dagster here: arrays in, arrays out. Buffers are allocated once and
written in place by the kernels (see ``kernels.py`` for the state layout).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robosf_assets.sim import geodesic, kernels
from robosf_assets.sim.params import SimParams
from robosf_assets.sim.scenario import Scenario

# The serial kernel is the default: it already runs far above the throughput bar, and the
# threaded one (numba prange) collapses to ~2k steps/s when its threads share the cores
# with torch or another process, as they do during training on a 2-core machine.


class BatchedWorld:
    """B worlds of one scenario.

    :param scenario: geometry, robot sampling and crowd of every world.
    :param n_worlds: number of independent worlds B.
    :param seeds: one seed per world; world ``b`` draws only from its own stream.
    :param params: physical, sensor and reward constants (default: the scenario's [params] over
        the SimParams defaults); horizon, start/goal and crowd values come from the scenario.
    :param n_rays: LiDAR rays over 360 degrees.
    :param n_peds: pedestrians per world (default: the scenario's count).
    :param parallel: use the threaded kernel (numba ``prange`` over worlds; default off).
    :param horizon: episode length in steps (default: the scenario's).
    :param reference: step with the first-written kernels (``kernels.step_serial_reference``:
        pairwise social forces with four ``atan2`` per pair, every LiDAR ray against every wall),
        for the benchmark's old-versus-new comparison and the tests; same physics.
    """

    def __init__(
        self,
        scenario: Scenario,
        n_worlds: int,
        seeds: Sequence[int],
        params: SimParams | None = None,
        n_rays: int = 144,
        n_peds: int | None = None,
        parallel: bool = False,
        horizon: int | None = None,
        reference: bool = False,
    ) -> None:
        if n_worlds < 1:
            raise ValueError(f"n_worlds must be >= 1, got {n_worlds}")
        if len(seeds) != n_worlds:
            raise ValueError(f"need one seed per world: {n_worlds} worlds, {len(seeds)} seeds")
        if n_rays < 1:
            raise ValueError(f"n_rays must be >= 1, got {n_rays}")
        n_peds = scenario.ped_count if n_peds is None else int(n_peds)
        if n_peds < 0:
            raise ValueError(f"n_peds must be >= 0, got {n_peds}")
        if n_peds > 0 and not scenario.flows:
            raise ValueError(f"scenario {scenario.name!r} has no pedestrian flows; n_peds must be 0")
        if horizon is not None and horizon < 1:
            raise ValueError(f"horizon must be >= 1 step, got {horizon}")
        self.params = (params or scenario.sim_params()).replace(
            horizon=float(horizon or scenario.horizon),
            min_goal_distance=scenario.min_goal_distance,
            heading_noise=scenario.heading_noise,
            ped_speed_low=scenario.ped_speed[0],
            ped_speed_high=scenario.ped_speed[1],
        )
        self.scenario = scenario
        self.n_worlds = n_worlds
        self.n_peds = n_peds
        self.n_rays = n_rays
        self.parallel = parallel
        self.reference = reference
        self._p = self.params.to_array()

        b, p = n_worlds, n_peds
        self.robot = np.zeros((b, 5))
        self.robot_goal = np.zeros((b, 2))
        self.ped_pos = np.zeros((b, p, 2))
        self.ped_vel = np.zeros((b, p, 2))
        self.ped_goal = np.zeros((b, p, 2))
        self.ped_target = np.zeros((b, p, 2))
        self.ped_vmax = np.zeros((b, p))
        self.ped_flow = np.zeros((b, p), dtype=np.int64)
        self.ped_via = np.zeros((b, p), dtype=np.int64)
        self.steps = np.zeros(b, dtype=np.int64)
        self.rng = np.zeros(b, dtype=np.uint64)
        self.metrics = np.zeros((b, kernels.NM))
        self.status = np.zeros(b, dtype=np.int64)
        self.reward = np.zeros(b)
        self.lidar = np.zeros((b, n_rays))
        self.obs = np.zeros((b, n_rays + kernels.STATE_DIM), dtype=np.float32)
        self._f_total = np.zeros((b, p, 2))
        self._f_part = np.zeros((b, p, 2))

        self.walls = scenario.walls_array()
        self._start_rects = scenario.start_rects()
        self._goal_rects = scenario.goal_rects()
        self._flow_src, self._flow_tgt, self._flow_cum, self._flow_via, self._flow_nvia = scenario.flow_arrays()
        if self.params.reward_progress_geodesic:
            rr = self.params.robot_radius
            self.nav_nodes, self.nav_edges = geodesic.build_nav_graph(self.walls, rr + geodesic.GEODESIC_MARGIN, rr)
        else:  # an empty graph: the kernels skip the geodesic distance
            self.nav_nodes, self.nav_edges = np.zeros((0, 2)), np.zeros((0, 0))
        self.nav_dist = np.zeros((b, len(self.nav_nodes)))
        """(B, N): each navigation node's geodesic distance to its world's goal, set at reset."""
        angles = np.arange(n_rays) * (2.0 * np.pi / n_rays)
        self._ray_cos = np.cos(angles)
        self._ray_sin = np.sin(angles)
        # the kernels' argument groups over the buffers above (which are only ever written in
        # place), as named tuples for readers and as the plain tuples the kernels take
        self.groups = (
            kernels.WorldState(robot=self.robot, robot_goal=self.robot_goal, steps=self.steps, rng=self.rng,
                               metrics=self.metrics, status=self.status, nav_dist=self.nav_dist),
            kernels.Crowd(ped_pos=self.ped_pos, ped_vel=self.ped_vel, ped_goal=self.ped_goal,
                          ped_target=self.ped_target, ped_vmax=self.ped_vmax, ped_flow=self.ped_flow,
                          ped_via=self.ped_via),
            kernels.Scratch(f_total=self._f_total, f_part=self._f_part),
            kernels.Outputs(reward=self.reward, lidar=self.lidar, obs=self.obs),
            kernels.Layout(walls=self.walls, start_rects=self._start_rects, goal_rects=self._goal_rects,
                           nav_nodes=self.nav_nodes, nav_edges=self.nav_edges, ray_cos=self._ray_cos,
                           ray_sin=self._ray_sin),
            kernels.Flows(flow_src=self._flow_src, flow_tgt=self._flow_tgt, flow_cum=self._flow_cum,
                          flow_via=self._flow_via, flow_nvia=self._flow_nvia),
        )
        """``(WorldState, Crowd, Scratch, Outputs, Layout, Flows)``, see ``kernels``."""
        self._world_t, self._crowd_t, self._scratch_t, self._out_t, self._layout_t, self._flows_t = map(
            tuple, self.groups)
        for i, s in enumerate(seeds):
            self.seed_world(i, s)

    # ---- seeding and reset -----------------------------------------------------------------
    def seed_world(self, index: int, seed: int) -> None:
        """Restart world ``index``'s random stream from ``seed``."""
        self.rng[index] = kernels.seed_state(seed)

    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in the masked worlds (all by default); returns ``obs`` (B, D)."""
        if mask is None:
            mask = np.ones(self.n_worlds, dtype=bool)
        kernels.reset_worlds(mask, self._world_t, self._crowd_t, self._layout_t, self._flows_t, self._p)
        kernels.observe(mask, self._world_t, self._crowd_t, self._out_t, self._layout_t, self._p)
        return self.obs

    # ---- stepping ----------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> np.ndarray:
        """Advance every world by one ``dt`` with ``actions`` (B, 2) in [-1, 1].

        Updates ``obs``, ``reward``, ``status`` and ``metrics`` in place and returns ``obs``.
        Worlds whose ``status`` is not ``RUNNING`` afterwards must be reset before the next step.
        """
        actions = np.ascontiguousarray(actions, dtype=np.float64).reshape(self.n_worlds, 2)
        if self.reference:
            kernel = kernels.step_serial_reference
        else:
            kernel = kernels.step_parallel if self.parallel else kernels.step_serial
        kernel(actions, self._world_t, self._crowd_t, self._scratch_t, self._out_t, self._layout_t, self._flows_t,
               self._p)
        return self.obs

    @property
    def progress_distance(self) -> np.ndarray:
        """(B,): the goal distance the progress reward measured last (geodesic with
        ``reward_progress_geodesic``, else the straight line)."""
        return self.metrics[:, kernels.M_PREV_DIST]

    @property
    def robot_force(self) -> np.ndarray:
        """(B, P, 2): the force the robot exerted on each pedestrian in the last step (social force
        plus hard-body push; zero for pedestrians that ignore it, see ``SimParams.ped_aware_fraction``)."""
        return self._f_part

    # ---- per-episode metrics (REFERENCE §4) ---------------------------------------------------
    def episode_metrics(self, index: int) -> dict[str, float | bool | str | int]:
        """Metrics of world ``index``'s episode so far (call when it has just ended)."""
        m = self.metrics[index]
        status = int(self.status[index])
        steps = int(self.steps[index])
        success = status == kernels.GOAL
        path = float(m[kernels.M_PATH])
        start_dist = float(m[kernels.M_START_DIST])
        ped_steps = float(m[kernels.M_PED_STEPS])
        min_clear = float(m[kernels.M_MIN_CLEAR])
        return {
            "success": success,
            "collision": status in (kernels.COLLISION_PED, kernels.COLLISION_WALL),
            "collision_pedestrian": status == kernels.COLLISION_PED,
            "collision_obstacle": status == kernels.COLLISION_WALL,
            "collision_type": kernels.STATUS_NAMES[status] if status in (2, 3) else "none",
            "timeout": status == kernels.TIMEOUT,
            "outcome": kernels.STATUS_NAMES[status],
            "steps": steps,
            "time_to_goal": steps / self.params.horizon if success else float("nan"),
            "path_length": path,
            # straight-line distance over the distance driven; defined for successes only
            "path_efficiency": min(1.0, max(start_dist - self.params.goal_radius, 0.0) / path)
            if success and path > 0 else float("nan"),
            # clearance (surface to surface) to the nearest pedestrian; NaN without pedestrians
            "min_ped_distance": min_clear if np.isfinite(min_clear) else float("nan"),
            "near_misses": int(m[kernels.M_NEAR]),
            "comfort_exposure": float(m[kernels.M_COMFORT]) / ped_steps if ped_steps > 0 else 0.0,
            "jerk": float(m[kernels.M_JERK]) / steps if steps > 0 else 0.0,
            "episode_return": float(m[kernels.M_RETURN]),
        }
