"""CarRacing for training: gymnasium's physics, a cheaper drawing of the same picture.

gymnasium's CarRacing spends ~97% of a step drawing a 1000x800 surface that is then shrunk to 96x96
(DESIGN.md, "Performance model"). This env keeps everything that decides what happens (Box2D world,
track, car dynamics, rewards, termination: gymnasium's own ``CarRacing``) and replaces only the
drawing of the state observation: the same polygons (background, grass patches, road tiles and kerbs,
car hull, wheels and their stripes) drawn onto a small surface, after culling with numpy the ones
outside the kept view. The HUD bar is drawn black without its indicators: our crop
(``CARRACING_KEEP_ROWS``) cuts exactly at its top edge, so V never sees it.

Frames match the official ones within the bound tests/wm/test_fast_carracing.py states; scores that
users compare are always played on the official env (wm.evaluate).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
    CarRacing,
)
from pygame import gfxdraw

from wm.envs.games import CARRACING_KEEP_ROWS, CarRacingEnv

# The surface drawn on: the official 1000x800 shrunk 4x, where frames after our crop and resize
# differ from the official ones by well under 1/255 on average (the test's figures), at ~1/7 the cost.
DEFAULT_SURFACE = (250, 200)
# The top of the HUD bar in the official surface (its last 5/40 of the height): what our crop keeps.
_HUD_TOP = WINDOW_H * 35 / 40
assert round(_HUD_TOP / WINDOW_H * STATE_H) == CARRACING_KEEP_ROWS  # the crop cuts at the bar's edge


def _grass_patches() -> np.ndarray:
    """The grass squares gymnasium draws on the background, every other cell of a 40x40 grid: (n, 4, 2)."""
    cells = np.arange(-20, 20, 2) * GRASS_DIM
    x, y = (a.reshape(-1) for a in np.meshgrid(cells, cells, indexing="ij"))
    corners = np.array([(1, 0), (0, 0), (0, 1), (1, 1)], dtype=np.float64) * GRASS_DIM
    return np.stack([x, y], axis=1)[:, None, :] + corners[None]


class _Polygons:
    """Polygons (n, k, 2) in world units, with the bounding circles that cull them cheaply."""

    def __init__(self, vertices: np.ndarray):
        self.vertices = vertices
        self.centres = vertices.mean(axis=1)
        self.radii = np.linalg.norm(vertices - self.centres[:, None], axis=2).max(axis=1)


_GRASS = _Polygons(_grass_patches())
_FIELD = np.array([(PLAYFIELD, PLAYFIELD), (PLAYFIELD, -PLAYFIELD), (-PLAYFIELD, -PLAYFIELD),
                   (-PLAYFIELD, PLAYFIELD)], dtype=np.float64)


class FastCarRacing(CarRacing):
    """gymnasium's CarRacing whose ``state_pixels`` (the 96x96 observation) is drawn small.

    Every other render mode (videos, a window) is gymnasium's own drawing.
    """

    def __init__(self, *args: Any, surface: tuple[int, int] = DEFAULT_SURFACE, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._size = surface
        self._scale = surface[0] / WINDOW_W
        self._small: pygame.Surface | None = None
        self._road: _Polygons | None = None  # the road polygons of the current track
        self._road_of: object = None  # which road_poly list _road was made from

    def _render(self, mode: str) -> Any:
        if mode != "state_pixels" or "t" not in self.__dict__:
            return super()._render(mode)
        return self._state_pixels()

    def _road_polygons(self) -> _Polygons:
        """The track's polygons (tiles and kerbs, 4 corners each), rebuilt when reset makes a track."""
        if self._road_of is not self.road_poly:
            corners = np.array([poly for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)
            self._road = _Polygons(corners)
            self._road_of = self.road_poly
        assert self._road is not None
        return self._road

    def _state_pixels(self) -> np.ndarray:
        width, height = self._size
        if self._small is None:
            self._small = pygame.Surface((width, height))
        surf = self._small
        surf.fill((0, 0, 0))
        car = self.car
        assert car is not None
        # The official camera, in final (already flipped) pixel coordinates: the car sits at (W/2,
        # 3H/4), the track turns with it, and the zoom grows from 0.1 to ZOOM during the first second.
        zoom = (0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)) * self._scale
        angle = -car.hull.angle
        cos, sin = math.cos(angle), math.sin(angle)
        cx, cy = car.hull.position
        origin = np.array([width / 2, height * 3 / 4])
        # world -> pixels: rotate by angle about the car, scale, flip y, move to origin
        matrix = zoom * np.array([[cos, -sin], [-sin, -cos]])  # applied as points @ matrix
        view_bottom = _HUD_TOP * self._scale

        def to_pixels(points: np.ndarray) -> np.ndarray:
            return (points - (cx, cy)) @ matrix + origin

        def draw_visible(polygons: _Polygons) -> tuple[np.ndarray, list]:
            """Fill the polygons whose bounding circle meets the kept view; returns their indices."""
            centres, radii = to_pixels(polygons.centres), polygons.radii * zoom
            seen = np.flatnonzero((centres[:, 0] + radii >= 0) & (centres[:, 0] - radii <= width)
                                  & (centres[:, 1] + radii >= 0) & (centres[:, 1] - radii <= view_bottom))
            return seen, to_pixels(polygons.vertices[seen]).tolist()

        # gymnasium draws background, grass and road as an antialiased edge and a filled interior
        _fill(surf, to_pixels(_FIELD).tolist(), [int(c) for c in self.bg_color])
        grass_color = [int(c) for c in self.grass_color]
        for points in draw_visible(_GRASS)[1]:
            _fill(surf, points, grass_color)
        seen, road = draw_visible(self._road_polygons())
        for index, points in zip(seen, road, strict=True):
            _fill(surf, points, [int(c) for c in self.road_poly[index][1]])  # (visited tiles change colour)
        self._draw_car(surf, to_pixels)
        pygame.draw.rect(surf, (0, 0, 0), (0, math.floor(view_bottom), width, height))
        small = pygame.transform.smoothscale(surf, (STATE_W, STATE_H))
        return np.transpose(pygame.surfarray.array3d(small), (1, 0, 2))

    def _draw_car(self, surf: pygame.Surface, to_pixels: Any) -> None:
        """Wheels, hull, and the lighter stripe that shows each wheel turning, in gymnasium's order."""
        size = car_dynamics.SIZE
        half_w, radius = car_dynamics.WHEEL_W * size, car_dynamics.WHEEL_R * size
        shapes: list[tuple[list, Any]] = []  # (body-frame corners, colour), in drawing order
        bodies = []
        for body in self.car.drawlist:
            color = [int(c * 255) for c in body.color]
            first = len(shapes)
            shapes.extend((fixture.shape.vertices, color) for fixture in body.fixtures)
            phase = getattr(body, "phase", None)
            if phase is not None and not (math.sin(phase) > 0 and math.sin(phase + 1.2) > 0):
                # The stripe spans the wheel between the heights of two rim points 1.2 rad apart; a
                # point on the hidden half of the rim is pinned to the wheel's top or bottom edge.
                top, bottom = (radius * (math.cos(a) if math.sin(a) <= 0 else float(np.sign(math.cos(a))))
                               for a in (phase, phase + 1.2))
                stripe = [(-half_w, top), (half_w, top), (half_w, bottom), (-half_w, bottom)]
                shapes.append((stripe, car_dynamics.WHEEL_WHITE))
            bodies.append((body, first, len(shapes)))
        for body, first, last in bodies:
            cos, sin = math.cos(body.angle), math.sin(body.angle)
            rotation = np.array([[cos, sin], [-sin, cos]])  # body frame -> world, as points @ rotation
            position = np.array(body.position)
            for corners, color in shapes[first:last]:
                world = np.asarray(corners, dtype=np.float64) @ rotation + position
                pygame.draw.polygon(surf, color, to_pixels(world).tolist())


class FastCarRacingEnv(CarRacingEnv):
    """``CarRacingEnv`` (same API, step cap, rewards) on ``FastCarRacing``: for extraction and training."""

    def _new_game(self) -> CarRacing:
        return FastCarRacing(continuous=True, domain_randomize=False)


def _fill(surf: pygame.Surface, points: list, color: Any) -> None:
    gfxdraw.aapolygon(surf, points, color)
    gfxdraw.filled_polygon(surf, points, color)
