"""``python -m mtdepth_ros.node``: the ``mtdepth_node`` executable."""

import sys

from mtdepth_ros.node.process import main

sys.exit(main())
