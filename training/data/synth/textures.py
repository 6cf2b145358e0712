"""Procedural, tileable textures with mip levels, sampled by surface coordinates.

Spectral synthesis (white noise shaped by 1/f^beta in the Fourier domain) is
periodic by construction, so textures tile without seams. Regular patterns
(bricks, tiles, cobblestones, planks) are built on the same periodic grid;
with a random tile size per material they put fine, high-contrast texture at
every distance, so texture density alone says nothing about depth (a network
trained on noise that blurs with distance reads real tiled walls and
cobblestones as near). Lookups pick the mip level from each pixel's footprint
so far surfaces do not sparkle.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TEXTURE_SIZE = 256  # texels per side of one tile
BANK_SEED = 20240611  # the bank is fixed so a frame depends only on its own seed
# (beta, anisotropy): rough to smooth, plus streaky ones (asphalt, wood, bark).
TEXTURE_KINDS = ((0.8, 1.0), (1.2, 1.0), (1.6, 1.0), (2.0, 1.0), (2.6, 1.0),
                 (1.4, 6.0), (1.8, 0.15), (1.0, 3.0))
# Regular patterns after the noise kinds (indices NUM_NOISE ...): (name, cells per tile side).
PATTERN_KINDS = (('bricks', 8), ('tiles', 4), ('cobbles', 8), ('planks', 6), ('big_tiles', 2))
NUM_NOISE = len(TEXTURE_KINDS)
NUM_TEXTURES = NUM_NOISE + len(PATTERN_KINDS)
BRICKS, TILES, COBBLES, PLANKS, BIG_TILES = range(NUM_NOISE, NUM_TEXTURES)
JOINT_SHARE = 0.07  # mortar / grout width as a share of a cell
JOINT_VALUE = -0.9  # joints are dark
NUM_LEVELS = 7  # 256 .. 4 texels


def _spectral_noise(rng: np.random.Generator, beta: float, anisotropy: float) -> np.ndarray:
    freq = np.fft.fftfreq(TEXTURE_SIZE)
    fy, fx = np.meshgrid(freq, freq, indexing='ij')
    radius = np.sqrt((fx * anisotropy) ** 2 + (fy / anisotropy) ** 2)
    radius[0, 0] = 1.0
    amplitude = radius ** (-beta / 1.0)
    amplitude[0, 0] = 0.0
    phase = np.exp(2j * np.pi * rng.random((TEXTURE_SIZE, TEXTURE_SIZE)))
    field = np.real(np.fft.ifft2(amplitude * phase))
    field = (field - field.mean()) / (field.std() + 1e-9)
    return np.clip(field / 2.5, -1.0, 1.0).astype(np.float32)


def _cells(rng: np.random.Generator, count: int, spread: float) -> np.ndarray:
    """(count, count) random per-cell values in [-1, 1] of standard deviation ~``spread``."""
    return np.clip(rng.normal(0.0, spread, (count, count)), -1.0, 1.0)


def _pattern(rng: np.random.Generator, name: str, cells: int) -> np.ndarray:
    """A tileable regular pattern: per-cell tone, dark joints, fine grain on top."""
    coords = np.arange(TEXTURE_SIZE) / TEXTURE_SIZE * cells  # cell units
    v, u = np.meshgrid(coords, coords, indexing='ij')
    grain = _spectral_noise(rng, 1.0, 1.0) * 0.25
    if name == 'cobbles':  # jittered-grid Voronoi, distances wrapped so the tile repeats
        seeds = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells), indexing='ij'), -1)
                 + rng.uniform(0.15, 0.85, (cells, cells, 2))).reshape(-1, 2)
        offset = (np.stack([v, u], -1)[:, :, None, :] - seeds[None, None] + cells / 2) % cells - cells / 2
        dist = np.sqrt((offset ** 2).sum(-1))
        nearest = np.sort(dist, axis=-1)
        tone = rng.normal(0.0, 0.4, len(seeds)).clip(-1, 1)[dist.argmin(-1)]
        joint = nearest[..., 1] - nearest[..., 0] < JOINT_SHARE * 2
    else:
        rows = np.floor(v).astype(int) % cells
        if name == 'bricks':  # running bond: every other row shifted half a brick, bricks 2 cells long
            u = u / 2 + 0.5 * (rows % 2)
            cols = np.floor(u).astype(int) % (cells // 2)
            tone = _cells(rng, cells, 0.35)[rows, cols]
            joint = (np.mod(u, 1.0) < JOINT_SHARE / 2) | (np.mod(v, 1.0) < JOINT_SHARE)
        elif name == 'planks':  # boards along u, joints between rows only
            tone = _cells(rng, cells, 0.3)[rows, 0]
            joint = np.mod(v, 1.0) < JOINT_SHARE
        else:  # square tiles or pavers
            cols = np.floor(u).astype(int) % cells
            tone = _cells(rng, cells, 0.5 if name == 'big_tiles' else 0.3)[rows, cols]
            joint = (np.mod(u, 1.0) < JOINT_SHARE) | (np.mod(v, 1.0) < JOINT_SHARE)
    texture = np.where(joint, JOINT_VALUE, tone + grain)
    return np.clip(texture, -1.0, 1.0).astype(np.float32)


def _downsample(texture: np.ndarray) -> np.ndarray:
    return texture.reshape(texture.shape[0] // 2, 2, texture.shape[1] // 2, 2).mean(axis=(1, 3))


@lru_cache(maxsize=1)
def texture_bank() -> tuple[np.ndarray, ...]:
    """bank[level] = (NUM_TEXTURES, S, S) float32 in [-1, 1], S = TEXTURE_SIZE >> level."""
    rng = np.random.default_rng(BANK_SEED)
    noise = [_spectral_noise(rng, beta, aniso) for beta, aniso in TEXTURE_KINDS]
    patterns = [_pattern(rng, name, cells) for name, cells in PATTERN_KINDS]
    levels = [np.stack(noise + patterns)]
    for _ in range(1, NUM_LEVELS):
        levels.append(np.stack([_downsample(tex) for tex in levels[-1]]))
    return tuple(levels)


def sample(texture: np.ndarray, u: np.ndarray, v: np.ndarray, scale: np.ndarray,
           footprint: np.ndarray) -> np.ndarray:
    """Texture values at surface coordinates (u, v) in metres.

    ``texture`` (N,) int texture index, ``scale`` (N,) metres per tile,
    ``footprint`` (N,) metres one pixel covers at that point. Returns (N,) float32.
    """
    bank = texture_bank()
    texel = scale / TEXTURE_SIZE
    level = np.clip(np.round(np.log2(np.maximum(footprint / texel, 1.0))), 0, NUM_LEVELS - 1)
    level = level.astype(np.int32)
    out = np.zeros(u.shape, dtype=np.float32)
    for lv in np.unique(level):
        size = TEXTURE_SIZE >> lv
        at_level = level == lv
        iu = (np.floor(u[at_level] / scale[at_level] * size).astype(np.int64)) % size
        iv = (np.floor(v[at_level] / scale[at_level] * size).astype(np.int64)) % size
        out[at_level] = bank[lv][texture[at_level], iv, iu]
    return out
