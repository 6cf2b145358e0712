"""``python -m mtdepth_ros.node``: the node, as the ``mtdepth_node`` executable."""

import sys

from mtdepth_ros.node.mtdepth_node import main

sys.exit(main())
