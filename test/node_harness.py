"""Talking to a real ``mtdepth_node`` over real topics, from a second node.

``RosHarness`` owns an rclpy context and an executor spinning on its own
thread; ``Probe`` is the camera and the listener: it publishes images with
their camera_info and records what comes back. Tests wait with deadlines,
never with fixed sleeps.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import model_fixtures as mf
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, ShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float32MultiArray, Header

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.inference.outputs import TOPICS, message_type
from mtdepth_ros.node.mtdepth_node import DIAGNOSTIC_TASK, NODE_NAME

REPO = Path(__file__).resolve().parents[1]
EXECUTABLE = Path(sys.executable).parent / 'mtdepth_node'  # the console script pip installed
PARAMS_FILE = REPO / 'config' / 'mtdepth.yaml'
EXIT_TIMEOUT_S = 20.0
FRAME_ID = 'camera_optical_frame'
DIAGNOSTIC_NAME = f'{NODE_NAME}: {DIAGNOSTIC_TASK}'  # the node's status, under its own name
# The camera the node tests send with: twice the tiny model's input (test/model_fixtures.py),
# so fx 60 at the image is the training camera's 30 at the network.
IMAGE_W, IMAGE_H = 64, 48
CAMERA = PinholeCamera(width=IMAGE_W, height=IMAGE_H, fx=2 * mf.FOCAL_PX, fy=2 * mf.FOCAL_PX,
                       cx=31.5, cy=23.5)
GREY = np.full((IMAGE_H, IMAGE_W, 3), 120, np.uint8)
DEADLINE_S = 10.0  # generous: the machine is shared; tests normally finish far sooner
SPIN_TIMEOUT_S = 0.1
RESEND_S = 0.2  # input is best effort: send again until an answer comes
# every output topic of the node (mtdepth_ros.inference.outputs.TOPICS) -> its message class
OUTPUT_TYPES = {
    topic: {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
            'sensor_msgs/msg/PointCloud2': PointCloud2}[message_type(output)]
    for output, topic in TOPICS.items()}
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
_namespaces = itertools.count()
# start(listen=topics, probe_args=..., **parameters) -> (node, probe): the conftest fixture
NodeFactory = Callable[..., tuple[Any, 'Probe']]


def unique_namespace() -> str:
    return f'/mtdepth_test_{next(_namespaces)}'


def wait_until(condition: Callable[[], Any], timeout: float = DEADLINE_S,
               what: str = 'condition', raise_on_timeout: bool = True) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not value and raise_on_timeout:
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')
    return value


class RosHarness:
    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        # A node destroyed while the executor builds its wait set raises
        # InvalidHandle once; keep spinning for the other nodes.
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
            except (ExternalShutdownException, ShutdownException):
                return
            except InvalidHandle:
                continue

    def add(self, node: Node) -> Node:
        self.executor.add_node(node)
        return node

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        node.destroy_node()

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE_S)
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


def camera_info(camera: PinholeCamera, header: Header) -> CameraInfo:
    return camera.to_camera_info(header)


class Probe(Node):
    """Camera and listener in one node, under the node's namespace."""

    def __init__(self, context: Context, namespace: str, listen: Iterable[str] = OUTPUT_TYPES,
                 input_qos: QoSProfile = RELIABLE) -> None:
        super().__init__('probe', namespace=namespace, context=context)
        self.image_pub = self.create_publisher(Image, 'image', input_qos)
        self.input_qos = input_qos
        self.compressed_pub: Any = None  # created on the first compressed frame
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', input_qos)
        self.received: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self._lock = threading.Lock()
        for topic in listen:
            self.listen(topic)
        self.sent: list[tuple[int, int]] = []  # (sec, nanosec) of every frame sent

    def listen(self, topic: str, kind: Any = None, qos: QoSProfile = RELIABLE) -> None:
        kind = kind or OUTPUT_TYPES[topic]

        def store(msg: Any, topic: str = topic) -> None:
            with self._lock:
                self.received[topic].append((time.monotonic(), msg))

        self.create_subscription(kind, topic, store, qos)

    def messages(self, topic: str) -> list[Any]:
        with self._lock:
            return [msg for _, msg in self.received[topic]]

    def send(self, image: Image | CompressedImage | np.ndarray | bytes,
             camera: PinholeCamera | CameraInfo | None = None,
             info_stamp: Time | None = None) -> Header:
        """Publish a frame stamped now (camera_info first when given, as a camera or a
        ready message); returns its header. ``bytes`` go out on the image topic as they
        are (serialized, stamp and all)."""
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=FRAME_ID)
        self.sent.append((header.stamp.sec, header.stamp.nanosec))
        msg = array_to_image(image, 'rgb8', header) if isinstance(image, np.ndarray) else image
        if not isinstance(msg, bytes):
            msg.header = header
        publisher = self.image_pub
        if isinstance(msg, CompressedImage):
            if self.compressed_pub is None:
                self.compressed_pub = self.create_publisher(
                    CompressedImage, 'image/compressed', self.input_qos)
            publisher = self.compressed_pub
        if camera is not None:
            if isinstance(camera, CameraInfo):
                info = camera
                info.header = header
            else:
                info = camera_info(camera, header)
            if info_stamp is not None:
                info.header.stamp = info_stamp
            self.info_pub.publish(info)
        publisher.publish(msg)
        return header

    def send_compressed(self, rgb: np.ndarray, kind: str = 'jpeg',
                        camera: PinholeCamera | None = None) -> Header:
        """Publish ``rgb`` compressed on 'image/compressed' (camera_info first when given)."""
        from mtdepth_ros.conversions.compressed import rgb_to_compressed  # noqa: PLC0415

        return self.send(rgb_to_compressed(rgb, kind), camera)

    def send_while_not(self, condition: Callable[[], Any], image: Image | np.ndarray | bytes,
                       camera: PinholeCamera | CameraInfo | None = None, what: str = 'condition',
                       timeout: float = DEADLINE_S) -> None:
        """Send a frame every RESEND_S until ``condition()`` holds (best effort may lose some)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send(image, camera)
            if wait_until(condition, min(RESEND_S, deadline - time.monotonic()), what,
                          raise_on_timeout=False):
                return
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')

    def send_until(self, topic: str, image: Image | np.ndarray,
                   camera: PinholeCamera | CameraInfo | None = None, count: int = 1,
                   timeout: float = DEADLINE_S, **kwargs: Any) -> list[Any]:
        """Send frames every RESEND_S until ``count`` messages arrived on ``topic``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send(image, camera, **kwargs)
            until = min(time.monotonic() + RESEND_S, deadline)
            while time.monotonic() < until:
                if len(self.messages(topic)) >= count:
                    return self.messages(topic)
                time.sleep(0.01)
        raise AssertionError(f'no {count} messages on {topic} within {timeout} s')

    def lifecycle(self, node_name: str, transition: str, timeout: float = DEADLINE_S) -> bool:
        """Ask node ``node_name`` (full name) for ``transition`` over its change_state service."""
        from lifecycle_msgs.srv import ChangeState  # noqa: PLC0415

        request = ChangeState.Request()
        request.transition.label = transition
        return bool(self._call(ChangeState, f'{node_name}/change_state', request, timeout).success)

    def lifecycle_state(self, node_name: str, timeout: float = DEADLINE_S) -> str:
        """The node's state label (unconfigured, inactive, active, finalized) from get_state."""
        from lifecycle_msgs.srv import GetState  # noqa: PLC0415

        response = self._call(GetState, f'{node_name}/get_state', GetState.Request(), timeout)
        return str(response.current_state.label)

    def set_remote_parameter(self, node_name: str, name: str, value: Any,
                             timeout: float = DEADLINE_S) -> Any:
        """Set a parameter of another node over its set_parameters service; the result."""
        from rcl_interfaces.srv import SetParameters  # noqa: PLC0415
        from rclpy.parameter import Parameter  # noqa: PLC0415

        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self._call(SetParameters, f'{node_name}/set_parameters', request, timeout).results[0]

    def _call(self, kind: Any, service: str, request: Any, timeout: float) -> Any:
        client = self.create_client(kind, service)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f'no service {service}')
            future = client.call_async(request)
            wait_until(future.done, timeout, what=f'{service} to answer')
            return future.result()
        finally:
            self.destroy_client(client)

    def diagnostics(self, name: str) -> list[Any]:
        """DiagnosticStatus entries named ``name`` received so far."""
        return [s for array in self.messages('/diagnostics') for s in array.status
                if s.name == name]

    def listen_diagnostics(self) -> None:
        self.listen('/diagnostics', DiagnosticArray)

    def listen_bin_edges(self) -> None:
        self.listen('intervals/bin_edges', Float32MultiArray, LATCHED)


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))
    return env


class NodeProcess:
    """The node executable with config/mtdepth.yaml, ``-p`` for each of ``parameters``,
    in ``namespace``; ``cameras`` makes it serve several (``--cameras``)."""

    def __init__(self, executable: Path, model: Path, namespace: str, log: Path,
                 *parameters: str, cameras: tuple[str, ...] = ()) -> None:
        own = ['--cameras', ','.join(cameras)] if cameras else []
        args = [str(executable), *own, '--ros-args', '--params-file', str(PARAMS_FILE),
                '-p', f'model_path:={model}', '-p', 'diagnostics.period:=0.2',
                '-r', f'__ns:={namespace}']
        for parameter in parameters:
            args += ['-p', parameter]
        self.model = model
        self.log = log
        self._log_file: IO[bytes] = log.open('wb')
        self.process = subprocess.Popen(args, env=node_env(), stdout=self._log_file,
                                        stderr=subprocess.STDOUT)

    def rss_kb(self) -> int:
        for line in Path(f'/proc/{self.process.pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
        raise AssertionError('no VmRSS line')

    def interrupt(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(EXIT_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._log_file.close()

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors='replace')


def refusal(harness: RosHarness, namespace: str = '/refused', **parameters: Any) -> str:
    """The StartupError text of an in-process node started with ``parameters`` (names with
    '__' for '.'): at construction (declaring) or at autostart (configure)."""
    from rclpy.parameter import Parameter  # noqa: PLC0415

    from mtdepth_ros.node.mtdepth_node import MtDepthNode, StartupError  # noqa: PLC0415

    overrides = [Parameter(k.replace('__', '.'), value=v) for k, v in parameters.items()]
    node = None
    try:
        node = MtDepthNode(context=harness.context, namespace=namespace,
                           parameter_overrides=overrides)
        node.autostart()
    except StartupError as error:
        return str(error)
    finally:
        if node is not None:
            node.destroy_node()
    raise AssertionError(f'the node started with {parameters}')
