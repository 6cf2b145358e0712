"""Start mtdepth_node on a camera: ``ros2 launch mtdepth_ros depth.launch.py``.

Arguments (``ros2 launch mtdepth_ros depth.launch.py --show-args``):
  model_path   ONNX model with a model card; '' = the params file's (the bundled model)
  backend      backend chain, e.g. 'tensorrt,onnxruntime'; '' = the params file's
  namespace    namespace of the node and its outputs (default mtdepth: /mtdepth/depth, ...)
  image        camera image topic (remapped to the node's 'image')
  camera_info  camera info topic (remapped to the node's 'camera_info')
  params_file  parameters; default: the package's config/mtdepth.yaml
  log_level    debug, info, warn, error

Only launch / launch_ros APIs present in Humble, Jazzy and Kilted are used.
Large images and clouds between processes need the Fast DDS profile in
share/mtdepth_ros/config (docs/node.md): export FASTDDS_DEFAULT_PROFILES_FILE
in the shell that starts this launch file and its subscribers.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'mtdepth_ros'
EXECUTABLE = 'mtdepth_node'
ARGUMENTS = (
    ('model_path', '', "ONNX model with a model card; '' = the params file's (bundled model)"),
    ('backend', '', "backend chain, e.g. 'tensorrt,onnxruntime'; '' = the params file's"),
    ('namespace', 'mtdepth', 'namespace of the node and its outputs'),
    ('image', '/camera/image_rect', 'camera image topic'),
    ('camera_info', '/camera/camera_info', 'camera info topic'),
    ('log_level', 'info', 'log level: debug, info, warn, error'),
)


def launch_node(context, *args, **kwargs):
    """The node, with model_path and backend passed only when given.

    Passing an empty override would hide a value set in a custom params file.
    """
    def value(name):
        return LaunchConfiguration(name).perform(context)

    # value_type=str: a path is a string even where YAML would read it otherwise
    overrides = {name: ParameterValue(value(name), value_type=str)
                 for name in ('model_path', 'backend') if value(name)}
    parameters = [value('params_file')] + ([overrides] if overrides else [])
    return [Node(
        package=PACKAGE, executable=EXECUTABLE, name=EXECUTABLE, namespace=value('namespace'),
        parameters=parameters,
        remappings=[('image', value('image')), ('camera_info', value('camera_info'))],
        ros_arguments=['--log-level', value('log_level')],
        output='screen')]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'mtdepth.yaml'])
    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in ARGUMENTS]
    arguments.append(DeclareLaunchArgument(
        'params_file', default_value=default_params,
        description='node parameters (YAML); default: share/mtdepth_ros/config/mtdepth.yaml'))
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_node)])
