"""The ``mtdepth_node`` process: one lifecycle node per camera, shared models, clean stops.

    mtdepth_node [--cameras front,left,...] --ros-args [-r __ns:=/mtdepth] [...]

Without ``--cameras``: one node, named and namespaced as any ROS node. With
it: one node per camera, in ``<namespace>/<camera>``, each with its own
parameters (params files address it as ``/<namespace>/<camera>/mtdepth_node``),
topics, diagnostics and newest-frame slot; nodes that ask for the same model
share one loaded copy and one inference worker (:mod:`.model_pool`).

Nodes with ``autostart: true`` (the default) are configured and activated
while the executor already spins, so their diagnostics report a long
configure (a TensorRT engine build) as it happens. A node that cannot be
configured then is a start-up refusal: one FATAL line, exit code 1.

rclpy's own signal handlers would shut the context down while the worker may
be publishing; here SIGINT, SIGTERM and SIGHUP only ask the spin loop to stop,
and every node stops its input and its worker before the context goes.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys
import threading
from collections.abc import Sequence

import rclpy
import rclpy.logging
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from mtdepth_ros.node.mtdepth_node import NODE_NAME, MtDepthNode, StartupError

SPIN_SLICE_S = 0.1  # the spin loop checks for a stop signal this often
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ROS_ARGS, ROS_ARGS_END = '--ros-args', '--'
REMAP_FLAGS = ('-r', '--remap')
NAMESPACE_REMAP = '__ns:='
STARTER_JOIN_S = 5.0
# glibc mallopt options (malloc.h) and values for tune_allocator
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_OPTIONS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 512 << 20),
                  (M_TOP_PAD, 64 << 20))


def tune_allocator() -> bool:
    """Keep the big per-frame buffers (clouds of 14 MB) in the heap: glibc's malloc.

    By default glibc maps blocks above a threshold with mmap and unmaps them
    on free, so every frame's cloud costs thousands of fresh page faults
    (expensive on virtual machines). A high mmap threshold (its maximum,
    32 MiB), a trim threshold and a top pad keep freed blocks for the next
    frame. The same as the MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ /
    MALLOC_TOP_PAD_ environment variables, set from inside. False where the C
    library has no mallopt (not glibc).
    """
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None:
        return False
    return all(mallopt(option, value) == 1 for option, value in MALLOC_OPTIONS)


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the program's own arguments, the ROS arguments) of a command line."""
    own, ros, in_ros = [], [], False
    for arg in argv:
        if arg == ROS_ARGS:
            in_ros = True
        elif in_ros and arg == ROS_ARGS_END:
            in_ros = False
        elif in_ros:
            ros.append(arg)
        else:
            own.append(arg)
    return own, ros


def camera_arguments(ros: Sequence[str], camera: str) -> list[str]:
    """The ROS arguments of one camera's node: the process's, namespaced under ``camera``."""
    base, kept, i = '', [], 0
    while i < len(ros):
        if ros[i] in REMAP_FLAGS and i + 1 < len(ros) and ros[i + 1].startswith(NAMESPACE_REMAP):
            base = ros[i + 1][len(NAMESPACE_REMAP):]
            i += 2
            continue
        kept.append(ros[i])
        i += 1
    return [ROS_ARGS, *kept, '-r', f'{NAMESPACE_REMAP}{base.rstrip("/")}/{camera}']


def parse_cameras(own: Sequence[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog='mtdepth_node', description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', default='',
                        help='comma-separated camera namespaces served by this process')
    cameras = [c.strip() for c in parser.parse_args(own[1:]).cameras.split(',') if c.strip()]
    bad = [c for c in cameras if not c.replace('_', '').isalnum()]
    if bad or len(set(cameras)) != len(cameras):
        parser.error(f'--cameras takes distinct names of letters, digits and _, got {cameras}')
    return cameras


def create_nodes(cameras: Sequence[str], ros: Sequence[str]) -> list[MtDepthNode]:
    if not cameras:
        return [MtDepthNode()]
    nodes: list[MtDepthNode] = []
    try:
        for camera in cameras:
            nodes.append(MtDepthNode(cli_args=camera_arguments(ros, camera),
                                     use_global_arguments=False))
    except StartupError:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def start_nodes(nodes: Sequence[MtDepthNode], failed: list[StartupError],
                stop: threading.Event) -> None:
    """Configure and activate every node with autostart; the first refusal stops the process."""
    for node in nodes:
        if stop.is_set():
            return
        if not node.config.autostart:
            node.get_logger().info('autostart is false: waiting for a lifecycle manager')
            continue
        try:
            node.autostart()
        except StartupError as error:
            failed.append(error)
            stop.set()
            return


def main(args: list[str] | None = None) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP: 0 after a clean stop, 1 if a node cannot start."""
    argv = list(sys.argv if args is None else args)
    own, ros = split_arguments(argv)
    cameras = parse_cameras(own)
    tune_allocator()
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    try:
        nodes = create_nodes(cameras, ros)
    except StartupError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(error))
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=len(nodes) + 2)
    for node in nodes:
        executor.add_node(node)
    failed: list[StartupError] = []
    starter = threading.Thread(target=start_nodes, args=(nodes, failed, stop),
                               name='mtdepth_autostart', daemon=True)
    starter.start()
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_SLICE_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        starter.join(STARTER_JOIN_S)
        for refusal in failed:
            rclpy.logging.get_logger(NODE_NAME).fatal(str(refusal))
        for node in nodes:
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
