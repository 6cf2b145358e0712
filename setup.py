"""ament_python package that also installs with plain pip into a venv.

colcon puts console scripts in lib/mtdepth_ros (setup.cfg). pip builds a wheel
whose scripts land in bin/, where `ros2 run` and launch files do not look, so
wheel builds also install small wrappers to lib/mtdepth_ros as data files.
"""

import sys
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'mtdepth_ros'
HERE = Path(__file__).parent
EXECUTABLES = {
    'mtdepth_node': 'mtdepth_ros.node.process:main',
    'mtdepth-eval': 'mtdepth_ros.evaluation.evaluate:main',
    'mtdepth-build-engine': 'mtdepth_ros.inference.backends.build_engine:main',
}
WHEEL_COMMANDS = {'bdist_wheel', 'editable_wheel', 'dist_info'}


def requirements(name: str) -> list[str]:
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


def data_files() -> list[tuple[str, list[str]]]:
    files = [
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz') + glob('config/*.json')),
        (f'share/{PACKAGE}/models', glob('models/*.onnx') + glob('models/*.md')),
    ]
    if WHEEL_COMMANDS & set(sys.argv):
        files.append((f'lib/{PACKAGE}', sorted(glob('scripts/lib/*'))))
    return files


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=data_files(),
    install_requires=['setuptools'],
    extras_require={
        'ros': requirements('ros'),
        'vehicle': requirements('vehicle'),
        'eval': requirements('vehicle') + requirements('eval'),
        'training': requirements('training'),
        'test': requirements('test'),
    },
    zip_safe=True,
    maintainer='mtdepth_ros maintainers',
    maintainer_email='maintainers@mtdepth-ros.dev',
    description='Monocular multi-task depth, segmentation and point clouds for ROS 2',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in EXECUTABLES.items()],
    },
)
