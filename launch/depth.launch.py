"""Start mtdepth_node on one camera or several: ``ros2 launch mtdepth_ros depth.launch.py``.

Arguments (``ros2 launch mtdepth_ros depth.launch.py --show-args``):
  model_path       ONNX model with a model card; '' = the params file's (the bundled model)
  backend          backend chain, e.g. 'tensorrt,onnxruntime'; '' = the params file's
  namespace        namespace of the node(s) and outputs (default mtdepth: /mtdepth/depth/image_rect)
  cameras          '' = one camera; 'front,left' = one process serving /<namespace>/front, ...
  image            camera image topic; with cameras, '{camera}' stands for each name
  camera_info      camera info topic; with cameras, '{camera}' stands for each name
  input_transport  raw (sensor_msgs/Image) or compressed (the image topic is a CompressedImage)
  autostart        true: the node configures and activates itself; false: a lifecycle manager does
  use_sim_time     true: stamps and latency on /clock (bag replay)
  params_file      parameters; default: the package's config/mtdepth.yaml
  log_level        debug, info, warn, error, fatal

Only launch / launch_ros APIs present in Humble, Jazzy and Kilted are used.
Large images and clouds between processes need the Fast DDS profile in
share/mtdepth_ros/config (docs/node.md): export FASTDDS_DEFAULT_PROFILES_FILE
in the shell that starts this launch file and its subscribers.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = 'mtdepth_ros'
EXECUTABLE = 'mtdepth_node'
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
TRANSPORTS = ('raw', 'compressed')
BOOLEANS = ('true', 'false')
CAMERA = '{camera}'
ARGUMENTS = (
    ('model_path', '', "ONNX model with a model card; '' = the params file's (bundled model)"),
    ('backend', '', "backend chain, e.g. 'tensorrt,onnxruntime'; '' = the params file's"),
    ('namespace', 'mtdepth', 'namespace of the node(s) and their outputs'),
    ('cameras', '', "'' = one camera; comma-separated names = one process, one node each"),
    ('image', '/camera/image_rect', "camera image topic ('{camera}' = each camera's name)"),
    ('camera_info', '/camera/camera_info', "camera info topic ('{camera}' = each camera's name)"),
    ('input_transport', 'raw', 'raw or compressed (the image topic carries CompressedImage)'),
    ('autostart', 'true', 'true: configure and activate at start; false: a lifecycle manager'),
    ('use_sim_time', 'false', 'true: use /clock (bag replay)'),
    ('log_level', 'info', 'log level: ' + ', '.join(LOG_LEVELS)),
)


class LaunchArgumentError(ValueError):
    """A launch argument this launch file cannot use; the text lists what it can."""


def choice(name, value, allowed):
    if value not in allowed:
        raise LaunchArgumentError(f"{name} '{value}' is not one of: {', '.join(allowed)}")
    return value


def remappings(namespace, cameras, image, camera_info, transport):
    """(node topic, camera topic) pairs; per camera, from absolute names."""
    image_input = 'image/compressed' if transport == 'compressed' else 'image'
    if not cameras:
        return [(image_input, image), ('camera_info', camera_info)]
    for name, pattern in (('image', image), ('camera_info', camera_info)):
        if CAMERA not in pattern:
            raise LaunchArgumentError(
                f"with cameras:={','.join(cameras)}, {name} must name each camera's topic "
                f'with {CAMERA}, e.g. {name}:=/{CAMERA}/{"image_rect" if name == "image" else name}')
    base = '/' + namespace.strip('/') if namespace.strip('/') else ''
    pairs = []
    for camera in cameras:
        pairs.append((f'{base}/{camera}/{image_input}', image.replace(CAMERA, camera)))
        pairs.append((f'{base}/{camera}/camera_info', camera_info.replace(CAMERA, camera)))
    return pairs


def launch_node(context, *args, **kwargs):
    """The node process, with model_path and backend passed only when given.

    Passing an empty override would hide a value set in a custom params file.
    """
    def value(name):
        return LaunchConfiguration(name).perform(context)

    log_level = choice('log_level', value('log_level'), LOG_LEVELS)
    transport = choice('input_transport', value('input_transport'), TRANSPORTS)
    flags = {name: choice(name, value(name).lower(), BOOLEANS) == 'true'
             for name in ('autostart', 'use_sim_time')}
    cameras = [c.strip() for c in value('cameras').split(',') if c.strip()]
    # value_type=str: a path is a string even where YAML would read it otherwise
    overrides = {name: ParameterValue(value(name), value_type=str)
                 for name in ('model_path', 'backend') if value(name)}
    overrides.update(flags, input_transport=transport)
    return [Node(
        package=PACKAGE, executable=EXECUTABLE, name=EXECUTABLE, namespace=value('namespace'),
        arguments=['--cameras', ','.join(cameras)] if cameras else [],
        parameters=[value('params_file'), overrides],
        remappings=remappings(value('namespace'), cameras, value('image'),
                              value('camera_info'), transport),
        ros_arguments=['--log-level', log_level],
        output='screen')]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'mtdepth.yaml'])
    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in ARGUMENTS]
    arguments.append(DeclareLaunchArgument(
        'params_file', default_value=default_params,
        description='node parameters (YAML); default: share/mtdepth_ros/config/mtdepth.yaml'))
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_node)])
