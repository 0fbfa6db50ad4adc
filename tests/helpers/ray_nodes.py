"""`python -m tests.helpers.ray_nodes N`: a Ray cluster of N nodes on this machine (one CPU
each), for tests that need several real nodes. Prints the cluster's address, then runs until
its standard input closes, and shuts the nodes down."""

import os
import sys

from ray.cluster_utils import Cluster

from service.cluster.__main__ import SERVE_PATIENCE, SERVING_PRIORITY


def main() -> None:
    nodes = int(sys.argv[1])
    # The nodes' processes (Serve's controller, the raylets) inherit them, as the command's own.
    os.environ.update(SERVE_PATIENCE | SERVING_PRIORITY)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    sys.stdin.read()
    cluster.shutdown()


if __name__ == "__main__":
    main()
