"""The few CUDA runtime calls the TensorRT backend needs, through cuda-python.

cuda-python (``cuda.bindings.runtime``) returns a tuple from every call whose
first item is the error code; :func:`check` turns a failure into an exception
that names the call and CUDA's own explanation. Memory is allocated once and
reused: :class:`DeviceBuffer` on the GPU, :class:`PinnedBuffer` page-locked on
the host so that copies on a stream are truly asynchronous.
"""

from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from mtdepth_ros.inference.backends.base import BackendUnavailable

if TYPE_CHECKING:
    from cuda.bindings import runtime as cudart

CUDA_MODULE = 'cuda.bindings.runtime'  # cuda-python >= 12.6; older releases had cuda.cudart


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's reason."""


def load_cudart() -> ModuleType:
    """Import cuda-python's runtime API, or say why it cannot be used."""
    try:
        return importlib.import_module(CUDA_MODULE)
    except ImportError as error:
        raise BackendUnavailable(
            f'cannot import {CUDA_MODULE} ({error}); install cuda-python matching the '
            'CUDA driver (pip install "cuda-python>=12.6")') from error


def error_text(error: cudart.cudaError_t) -> str:
    from cuda.bindings import runtime as cudart  # noqa: PLC0415  (present: error came from it)

    _, name = cudart.cudaGetErrorName(error)
    _, text = cudart.cudaGetErrorString(error)
    return f'{name.decode()}: {text.decode()}'


def check(result: tuple[Any, ...], call: str) -> Any:
    """Unwrap a cuda-python result ``(error, value...)``; raise :class:`CudaError` on failure.

    Returns None for calls that return only the error, the value for one, the
    tuple of values for several.
    """
    from cuda.bindings import runtime as cudart  # noqa: PLC0415

    error, values = result[0], result[1:]
    if error != cudart.cudaError_t.cudaSuccess:
        raise CudaError(f'{call} failed: {error_text(error)}')
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is specific to: the GPU model and its compute capability."""

    name: str
    compute_capability: str  # 'major.minor', e.g. '8.7' for Jetson Orin
    device: int = 0


def gpu_identity() -> GpuIdentity:
    """The current CUDA device, or BackendUnavailable saying why there is none."""
    load_cudart()
    from cuda.bindings import runtime as cudart  # noqa: PLC0415

    try:
        count = check(cudart.cudaGetDeviceCount(), 'cudaGetDeviceCount')
        if count == 0:
            raise BackendUnavailable('no CUDA GPU found (cudaGetDeviceCount returned 0)')
        device = check(cudart.cudaGetDevice(), 'cudaGetDevice')
        prop = check(cudart.cudaGetDeviceProperties(device), 'cudaGetDeviceProperties')
    except CudaError as error:
        raise BackendUnavailable(f'no usable CUDA GPU: {error}') from error
    name = prop.name.split(b'\0', 1)[0].decode(errors='replace')
    return GpuIdentity(name=name, compute_capability=f'{prop.major}.{prop.minor}', device=device)


class Stream:
    """A CUDA stream of our own: non-blocking, so other work on the GPU does not serialise it."""

    def __init__(self) -> None:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415

        self._cudart = cudart
        self.handle: cudart.cudaStream_t | None = check(
            cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
            'cudaStreamCreateWithFlags')

    @property
    def pointer(self) -> int:
        """The raw handle, as TensorRT's execute_async_v3 takes it."""
        if self.handle is None:
            raise CudaError('the CUDA stream was destroyed')
        return int(self.handle)

    def synchronize(self) -> None:
        check(self._cudart.cudaStreamSynchronize(self.pointer), 'cudaStreamSynchronize')

    def close(self) -> None:
        if self.handle is not None:
            check(self._cudart.cudaStreamDestroy(self.handle), 'cudaStreamDestroy')
            self.handle = None


class DeviceBuffer:
    """``nbytes`` of GPU memory, allocated once."""

    def __init__(self, nbytes: int) -> None:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415

        self._cudart = cudart
        self.nbytes = max(int(nbytes), 1)  # cudaMalloc(0) gives no usable address
        self.pointer: int = check(cudart.cudaMalloc(self.nbytes), f'cudaMalloc({self.nbytes})')

    def copy_from_host(self, host: np.ndarray, stream: Stream) -> None:
        """Queue a host-to-device copy of ``host`` (C-contiguous, at most nbytes) on ``stream``."""
        self._check_size(host)
        check(self._cudart.cudaMemcpyAsync(
            self.pointer, host.ctypes.data, host.nbytes,
            self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.pointer),
            'cudaMemcpyAsync (host to device)')

    def copy_to_host(self, host: np.ndarray, stream: Stream) -> None:
        """Queue a device-to-host copy into ``host``; valid after ``stream.synchronize()``."""
        self._check_size(host)
        check(self._cudart.cudaMemcpyAsync(
            host.ctypes.data, self.pointer, host.nbytes,
            self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.pointer),
            'cudaMemcpyAsync (device to host)')

    def copy_from_host_sync(self, host: np.ndarray) -> None:
        """Blocking host-to-device copy (calibration, where nothing else runs)."""
        self._check_size(host)
        check(self._cudart.cudaMemcpy(
            self.pointer, host.ctypes.data, host.nbytes,
            self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), 'cudaMemcpy (host to device)')

    def _check_size(self, host: np.ndarray) -> None:
        if not host.flags.c_contiguous or host.nbytes > self.nbytes:
            raise ValueError(f'host array of {host.nbytes} bytes (contiguous: '
                             f'{host.flags.c_contiguous}) does not fit a {self.nbytes}-byte buffer')

    def close(self) -> None:
        if self.pointer:
            check(self._cudart.cudaFree(self.pointer), 'cudaFree')
            self.pointer = 0


class PinnedBuffer:
    """A numpy array in page-locked host memory (the fast path for asynchronous copies)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415

        self._cudart = cudart
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        self._pointer: int = check(cudart.cudaMallocHost(nbytes), f'cudaMallocHost({nbytes})')
        raw = (ctypes.c_byte * nbytes).from_address(self._pointer)
        count = int(np.prod(shape))
        self.array: np.ndarray = np.frombuffer(
            memoryview(raw).cast('B'), dtype=dtype, count=count).reshape(shape)

    def close(self) -> None:
        if self._pointer:
            self.array = np.empty(0, self.array.dtype)  # drop the view before the memory goes
            check(self._cudart.cudaFreeHost(self._pointer), 'cudaFreeHost')
            self._pointer = 0
