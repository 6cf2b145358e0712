"""The node under test for live replay: a child process, and the transport it needs.

Camera images of a few MB cross processes here, so the replay loads the Fast
DDS large-message profile and keeps discovery on this machine unless the
environment already says otherwise (:func:`transport_environment`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import IO

import mtdepth_ros
from mtdepth_ros.evaluation.session import OUTPUT_NAMESPACE
from mtdepth_ros.inference.resources import fastdds_profile_path

NODE_MODULE = 'mtdepth_ros.node'
NODE_LOG = 'node.log'
EXIT_WAIT_S = 10.0
LOG_TAIL_CHARS = 2000
FASTRTPS_RMWS = ('', 'rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp')  # '' = the default RMW


def transport_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Fill in, where unset, the settings a local replay of camera images needs.

    Fast DDS's default transports lose images of a few MB between processes
    (docs/node.md, "Fast DDS and large messages"): measured, a 10 Hz replay of
    1242x375 frames without the profile had 25 of 30 frames lost on the way.
    So with a Fast DDS RMW and no profile set, the package's profile is used;
    and discovery stays on this machine (the node and the player both run
    here). Values already in ``environ`` are kept. Returns what was set.
    """
    changed = []
    if environ.get('RMW_IMPLEMENTATION', '') in FASTRTPS_RMWS \
            and not environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
        profile = fastdds_profile_path()
        if profile is not None:
            environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
            changed.append(f'FASTDDS_DEFAULT_PROFILES_FILE={profile}')
    if 'ROS_AUTOMATIC_DISCOVERY_RANGE' not in environ and 'ROS_LOCALHOST_ONLY' not in environ:
        environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        changed.append('ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST')
    return changed


class NodeProcess:
    """The node under test as a child process, its output in ``log``."""

    def __init__(self, model: Path, image_topic: str, camera_info_topic: str | None,
                 backends: tuple[str, ...], focal_correction: bool, extra: tuple[str, ...],
                 log: Path, compressed: bool = False, flip: bool = False,
                 ground_contact: bool = False) -> None:
        # The extra arguments (a --params-file, say) come first: in one --ros-args
        # section a later value wins, and the evaluation's own choices must.
        image = ['-p', 'input_transport:=compressed', '-r', f'image/compressed:={image_topic}'] \
            if compressed else ['-r', f'image:={image_topic}']
        args = [sys.executable, '-m', NODE_MODULE, '--ros-args', *extra,
                '-r', f'__ns:={OUTPUT_NAMESPACE}', *image,
                '-p', f'model_path:={model}', '-p', f'backend:={",".join(backends)}',
                '-p', f'focal_correction:={str(focal_correction).lower()}',
                '-p', f'flip:={str(flip).lower()}',
                '-p', f'ground_contact:={str(ground_contact).lower()}']
        if camera_info_topic:
            args += ['-r', f'camera_info:={camera_info_topic}']
        env = dict(os.environ)
        # The node runs this very package, also from a source checkout.
        package_root = str(Path(mtdepth_ros.__file__).resolve().parents[1])
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_root, env.get('PYTHONPATH')]))
        self.log = log
        self._log_file: IO[bytes] = log.open('wb')
        self.process = subprocess.Popen(args, env=env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors='replace')[-LOG_TAIL_CHARS:]

    def stop(self) -> int:
        """Ctrl-C, as a person would; killed if it does not exit in time."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log_file.close()
