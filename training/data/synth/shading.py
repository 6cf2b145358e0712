"""Materials, lighting and image formation for the ray-cast scenes.

Radiance is computed in linear RGB: textured albedo times (sky ambient + sun
with cast shadows + optional point lights), glass reflects the sky (outdoors also
the street around it, more at grazing angles, with glints of the sun). The
camera then applies a random exposure, white balance, tone curve, vignetting
and sensor noise, so brightness and colour say nothing reliable about depth;
road cameras also get lens blur, motion blur, saturation and JPEG artefacts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from training.data.synth import textures
from training.data.synth.raycast import Hits

PATTERN_NONE = 0
PatternFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
GAMMA = 2.2
TONE_SHOULDER = 1.5  # 1 - exp(-1.5 x): mid-grey 0.18 -> 0.24 linear -> ~133 after gamma
TONE_STEPS_PER_UNIT = 1024  # resolution of the tone curve's lookup table over linear radiance
TONE_TABLE_SIZE = 4 * TONE_STEPS_PER_UNIT  # linear values beyond 4 x key are white anyway
MIN_GRAZING_COS = 0.25  # limits the texture footprint growth at grazing angles
# Image degradations of a road camera (CameraResponse.random(..., artefacts=True)):
BLUR_SIGMA_PX = (0.0, 1.0)  # lens softness, Gaussian sigma in pixels
MOTION_BLUR_SHARE = 0.3  # frames with camera shake ...
MOTION_BLUR_PX = (1.0, 4.0)  # ... of this length in pixels, at a random angle
JPEG_SHARE = 0.4  # frames passed through JPEG ...
JPEG_QUALITY = (40, 95)  # ... at this quality
SATURATION = (0.6, 1.4)  # colour saturation around the luminance
# Outdoor reflections (Lighting.surroundings set): the street's buildings and trees fill
# reflected directions up to a skyline this high (sine of its elevation, varying with
# azimuth), the road below the horizon; the sun's glint is a lobe this tight and bright.
SKYLINE = (0.08, 0.4)
GROUND_SHARE = 0.5  # the road's radiance in reflections, of the surroundings'
SUN_GLINT_SHININESS = 400.0  # cos^400: half its peak 3.4 degrees off the mirror direction
SUN_GLINT = 12.0  # the glint's peak, of the sun's irradiance
FRESNEL_POWER = 5  # Schlick: reflection grows to a mirror's as (1 - cos)^5 at grazing


@dataclass
class MaterialTable:
    """Rows of surface properties; primitives refer to rows by index."""

    albedo: list[tuple[float, float, float]] = field(default_factory=list)  # linear RGB 0..1
    label: list[int] = field(default_factory=list)  # dataset class id of the surface
    texture: list[int] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)  # metres per texture tile
    amplitude: list[float] = field(default_factory=list)  # texture contrast
    pattern: list[int] = field(default_factory=list)
    params: list[tuple[float, float, float, float]] = field(default_factory=list)
    glass: list[float] = field(default_factory=list)  # 0..1 mirror-like sky reflection
    reflectance: list[float] = field(default_factory=list)  # LiDAR intensity; 0 = no return

    def add(self, albedo: tuple[float, float, float] | np.ndarray, label: int, texture: int = 0,
            scale: float = 2.0, amplitude: float = 0.3, pattern: int = PATTERN_NONE,
            params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0), glass: float = 0.0,
            reflectance: float = 0.3) -> int:
        self.albedo.append(tuple(float(c) for c in albedo))  # type: ignore[arg-type]
        self.label.append(int(label))
        self.texture.append(int(texture))
        self.scale.append(float(scale))
        self.amplitude.append(float(amplitude))
        self.pattern.append(int(pattern))
        self.params.append(tuple(float(p) for p in params))  # type: ignore[arg-type]
        self.glass.append(float(glass))
        self.reflectance.append(float(reflectance))
        return len(self.label) - 1

    def column(self, name: str) -> np.ndarray:
        """The column as an array (float32 for floats), cached until a row is added."""
        cache: dict[str, tuple[int, np.ndarray]] = self.__dict__.setdefault('_columns', {})
        rows = len(self.label)
        if name not in cache or cache[name][0] != rows:
            values = np.asarray(getattr(self, name))
            cache[name] = (rows, values.astype(np.float32) if values.dtype == np.float64 else values)
        return cache[name][1]


@dataclass
class PointLight:
    position: np.ndarray  # (3,) world
    color: np.ndarray  # (3,) linear RGB intensity at 1 m


@dataclass
class Lighting:
    to_sun: np.ndarray  # (3,) unit vector towards the sun (y down: to_sun[1] < 0 by day)
    sun: np.ndarray  # (3,) linear RGB irradiance
    ambient: np.ndarray  # (3,) sky light on an upward surface
    sky_zenith: np.ndarray  # (3,) sky colour overhead
    sky_horizon: np.ndarray  # (3,) sky colour at the horizon
    points: list[PointLight] = field(default_factory=list)
    # Outdoors: radiance of the street seen in reflections (buildings, trees); None (rooms):
    # reflections show the sky alone, with neither Fresnel nor glints.
    surroundings: np.ndarray | None = None


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two (N, 3) arrays (einsum: sum(axis=1) is slow on 3 columns)."""
    return np.einsum('ij,ij->i', a, b)


def sky_color(dirs: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(N, 3) float32 radiance of the sky along directions (N, 3), with a sun glow."""
    norm = np.sqrt(_dot(dirs, dirs))
    up = np.sqrt(np.clip(-dirs[:, 1] / norm, 0.0, 1.0))[:, None]
    zenith = lighting.sky_zenith.astype(np.float32)
    horizon = lighting.sky_horizon.astype(np.float32)
    color = horizon + (zenith - horizon) * up
    glow = np.clip((dirs @ lighting.to_sun.astype(np.float32)) / norm, 0.0, 1.0) ** 64
    return color + glow[:, None] * (lighting.sun.astype(np.float32) * 0.5)


def reflection_color(dirs: np.ndarray, lighting: Lighting, lit: np.ndarray) -> np.ndarray:
    """(N, 3) float32 radiance seen along reflected directions (N, 3) outdoors: the sky
    above a skyline of the surroundings, the road below the horizon, and the sun's glint
    where the reflecting point is ``lit`` (N,) bool."""
    assert lighting.surroundings is not None
    color = sky_color(dirs, lighting)
    norm = np.sqrt(_dot(dirs, dirs))
    up = -dirs[:, 1] / norm  # sine of the elevation
    azimuth = np.arctan2(dirs[:, 0], dirs[:, 2])
    # A skyline and facades of the street: bands of buildings and trees along the azimuth.
    waves = np.sin(5.0 * azimuth + 0.7) * 0.6 + np.sin(13.0 * azimuth + 2.1) * 0.4
    skyline = SKYLINE[0] + (SKYLINE[1] - SKYLINE[0]) * (0.5 + 0.5 * waves)
    facades = 0.55 + 0.45 * np.sin(31.0 * azimuth) * np.sin(9.0 * azimuth + 1.3)
    street = lighting.surroundings.astype(np.float32)[None, :] * facades[:, None].astype(np.float32)
    ground = np.float32(GROUND_SHARE) * lighting.surroundings.astype(np.float32)
    color = np.where((up < skyline)[:, None], street, color)
    color = np.where((up < 0)[:, None], ground[None, :], color)
    glint = np.clip((dirs @ lighting.to_sun.astype(np.float32)) / norm, 0.0, 1.0) ** SUN_GLINT_SHININESS
    return color + (glint * lit * np.float32(SUN_GLINT))[:, None] * lighting.sun.astype(np.float32)


def surface_coordinates(points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in metres on the plane of the dominant normal axis (boxes map exactly)."""
    axis = np.abs(normals).argmax(axis=1)
    u = np.where(axis == 0, points[:, 2], points[:, 0])
    v = np.where(axis == 1, points[:, 2], points[:, 1])
    return u, v


def shade(hits: Hits, dirs: np.ndarray, depth: np.ndarray, focal: float,
          primitive_material: np.ndarray, materials: MaterialTable, lighting: Lighting,
          shadow: np.ndarray, patterns: Mapping[int, PatternFn]) -> np.ndarray:
    """(R, C, 3) float32 linear radiance of a camera grid's hits; sky where nothing was hit."""
    radiance = np.empty((hits.t.size, 3), dtype=np.float32)
    # Flat indices and take(): boolean masks over (H, W, 3) arrays are several times slower.
    valid = np.flatnonzero(hits.valid.ravel())
    sky = np.flatnonzero(~hits.valid.ravel())
    dirs = dirs.reshape(-1, 3)
    radiance[sky] = sky_color(dirs.take(sky, axis=0), lighting)
    material = primitive_material[hits.primitive.ravel().take(valid)]
    points = hits.points.reshape(-1, 3).take(valid, axis=0)
    normals = hits.normal.reshape(-1, 3).take(valid, axis=0)
    view = dirs.take(valid, axis=0)
    view = view / np.sqrt(_dot(view, view))[:, None]
    u, v = surface_coordinates(points, normals)
    cosine = np.maximum(np.abs(_dot(view, normals)), MIN_GRAZING_COS)
    footprint = depth.ravel().take(valid) / focal / cosine
    tex = textures.sample(materials.column('texture')[material], u, v,
                          materials.column('scale')[material], footprint)
    albedo = materials.column('albedo')[material]
    albedo *= (1.0 + materials.column('amplitude')[material] * tex)[:, None]
    pattern = materials.column('pattern')[material]
    params = materials.column('params')[material]
    for kind, function in patterns.items():
        chosen = np.flatnonzero(pattern == kind)
        if len(chosen):
            albedo[chosen] = function(points[chosen], normals[chosen], params[chosen], albedo[chosen])
    np.clip(albedo, 0.0, 1.0, out=albedo)
    lit = ~shadow.ravel().take(valid)
    sun = np.clip(normals @ lighting.to_sun.astype(np.float32), 0.0, None) * lit
    sky = np.float32(0.6) + np.float32(0.4) * np.clip(-normals[:, 1], -1.0, 1.0)
    light = sky[:, None] * lighting.ambient.astype(np.float32) + sun[:, None] * lighting.sun.astype(np.float32)
    for lamp in lighting.points:
        offset = lamp.position.astype(np.float32) - points
        dist2 = np.maximum(_dot(offset, offset), 0.05)
        lambert = np.clip(_dot(offset, normals) / np.sqrt(dist2), 0.0, None)
        light += (lambert / dist2)[:, None] * lamp.color.astype(np.float32)
    color = albedo * light
    glass = materials.column('glass')[material]
    shiny = np.flatnonzero(glass > 0)
    if len(shiny):
        g = glass[shiny, None]
        n, w = normals[shiny], view[shiny]
        facing = _dot(w, n)
        reflected = w - 2.0 * facing[:, None] * n
        if lighting.surroundings is None:
            mirrored = sky_color(reflected, lighting)
        else:  # Schlick's Fresnel term and the street and sun in the reflection
            g = g + (1.0 - g) * (1.0 - np.abs(facing)[:, None]) ** FRESNEL_POWER
            mirrored = reflection_color(reflected, lighting, lit[shiny])
        color[shiny] = color[shiny] * (1.0 - g) + g * mirrored
    radiance[valid] = color
    return radiance.reshape(hits.t.shape + (3,))


@dataclass
class CameraResponse:
    """Per-frame camera settings drawn at random."""

    key: float  # target mid-grey of the exposure
    white_balance: np.ndarray  # (3,) channel gains
    vignetting: float  # relative darkening in the corners
    noise: float  # read noise std on the 0..1 scale
    contrast: float  # exponent of the tone curve around mid-grey
    blur_sigma: float = 0.0  # lens blur, pixels
    motion_px: float = 0.0  # motion blur length, pixels (0 = none)
    motion_angle: float = 0.0  # its direction, radians
    saturation: float = 1.0
    jpeg_quality: int = 0  # 0 = no JPEG round trip

    @classmethod
    def random(cls, rng: np.random.Generator, artefacts: bool = False) -> CameraResponse:
        """Random settings; ``artefacts`` adds blur, saturation and JPEG (road cameras)."""
        response = cls(key=float(rng.uniform(0.1, 0.22)),
                       white_balance=rng.uniform(0.9, 1.1, 3),
                       vignetting=float(rng.uniform(0.0, 0.35)),
                       noise=float(rng.uniform(0.002, 0.012)),
                       contrast=float(rng.uniform(0.85, 1.2)))
        if artefacts:
            response.key = float(rng.uniform(0.06, 0.24))
            response.white_balance = rng.uniform(0.85, 1.15, 3)
            response.contrast = float(rng.uniform(0.8, 1.5))
            response.blur_sigma = float(rng.uniform(*BLUR_SIGMA_PX))
            if rng.random() < MOTION_BLUR_SHARE:
                response.motion_px = float(rng.uniform(*MOTION_BLUR_PX))
                response.motion_angle = float(rng.uniform(0.0, np.pi))
            response.saturation = float(rng.uniform(*SATURATION))
            if rng.random() < JPEG_SHARE:
                response.jpeg_quality = int(rng.integers(*JPEG_QUALITY))
        return response


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle``."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), dtype=np.float32)
    centre = size // 2
    for t in np.linspace(-length / 2, length / 2, 4 * size):
        kernel[int(round(centre + t * np.sin(angle))), int(round(centre + t * np.cos(angle)))] = 1.0
    return kernel / kernel.sum()


def optical_blur(radiance: np.ndarray, response: CameraResponse) -> np.ndarray:
    """Lens and motion blur of linear radiance (H, W, 3), as the optics apply them."""
    if response.blur_sigma > 0.05:
        radiance = cv2.GaussianBlur(radiance, (0, 0), response.blur_sigma,
                                    borderType=cv2.BORDER_REFLECT)
    if response.motion_px >= 1.0:
        radiance = cv2.filter2D(radiance, -1, _motion_kernel(response.motion_px,
                                                             response.motion_angle),
                                borderType=cv2.BORDER_REFLECT)
    return radiance


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB after JPEG compression at ``quality``."""
    ok, data = cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:  # pragma: no cover - OpenCV always encodes a uint8 image
        return image
    return np.ascontiguousarray(decoded[..., ::-1])


@lru_cache(maxsize=8)
def _vignetting_shape(height: int, width: int) -> np.ndarray:
    """(H, W, 1) float32 squared distance from the centre, 1 at the corners."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return (((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2.0)[..., None]


def expose(radiance: np.ndarray, response: CameraResponse, rng: np.random.Generator) -> np.ndarray:
    """Linear radiance (H, W, 3) -> (H, W, 3) uint8 RGB through a random camera.

    Exposure puts the log-average luminance at ``key`` (Reinhard et al. 2002);
    the tone curve is a soft shoulder (no hard clipping) raised to the gamma,
    applied through a lookup table.
    """
    height, width = radiance.shape[:2]
    radiance = optical_blur(radiance, response)
    luminance = radiance[::4, ::4] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    log_average = float(np.exp(np.log(np.maximum(luminance, 1e-4)).mean()))
    scale = response.key / log_average
    gain = (scale * response.white_balance * TONE_STEPS_PER_UNIT).astype(np.float32)
    falloff = np.float32(1.0) - np.float32(response.vignetting) * _vignetting_shape(height, width)
    index = np.clip(radiance * falloff * gain, 0, TONE_TABLE_SIZE - 1).astype(np.int32)
    levels = np.arange(TONE_TABLE_SIZE, dtype=np.float32) / TONE_STEPS_PER_UNIT
    table = (1.0 - np.exp(-TONE_SHOULDER * levels)) ** (response.contrast / GAMMA) * 255.0
    toned = table.astype(np.float32)[index]
    if response.saturation != 1.0:
        grey = toned.mean(axis=2, keepdims=True)
        toned = grey + (toned - grey) * np.float32(response.saturation)
    toned += rng.standard_normal(toned.shape, dtype=np.float32) * np.float32(response.noise * 255.0)
    image = np.clip(toned + 0.5, 0, 255).astype(np.uint8)
    return jpeg_round_trip(image, response.jpeg_quality) if response.jpeg_quality else image
