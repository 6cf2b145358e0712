"""Procedural, tileable noise textures with mip levels, sampled by surface coordinates.

Spectral synthesis (white noise shaped by 1/f^beta in the Fourier domain) is
periodic by construction, so textures tile without seams. Lookups pick the mip
level from each pixel's footprint so far surfaces do not sparkle.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TEXTURE_SIZE = 256  # texels per side of one tile
BANK_SEED = 20240611  # the bank is fixed so a frame depends only on its own seed
# (beta, anisotropy): rough to smooth, plus streaky ones (asphalt, wood, bark).
TEXTURE_KINDS = ((0.8, 1.0), (1.2, 1.0), (1.6, 1.0), (2.0, 1.0), (2.6, 1.0),
                 (1.4, 6.0), (1.8, 0.15), (1.0, 3.0))
NUM_TEXTURES = len(TEXTURE_KINDS)
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


def _downsample(texture: np.ndarray) -> np.ndarray:
    return texture.reshape(texture.shape[0] // 2, 2, texture.shape[1] // 2, 2).mean(axis=(1, 3))


@lru_cache(maxsize=1)
def texture_bank() -> tuple[np.ndarray, ...]:
    """bank[level] = (NUM_TEXTURES, S, S) float32 in [-1, 1], S = TEXTURE_SIZE >> level."""
    rng = np.random.default_rng(BANK_SEED)
    levels = [np.stack([_spectral_noise(rng, beta, aniso) for beta, aniso in TEXTURE_KINDS])]
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
