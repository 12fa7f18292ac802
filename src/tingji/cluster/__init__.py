"""Running recognition on a Ray cluster.

::

    connect.py    Ray imported on demand, this process joined to a cluster, what the cluster has
    plan.py       how many models each node runs, and with which resources
    worker.py     the recogniser that runs on a node: a tingji service with its own models
    dispatch.py   the server's batch-job files sent to a pool of recognisers, one per model
    bulk.py       ``tingji batch``: thousands of files through Ray Data, outputs per file
    loopback.py   a throwaway cluster on this machine inside a loopback-only network
                  namespace, for tests and benchmarks

Nothing here is imported unless ``ray_address`` is set or ``tingji batch`` runs on a cluster;
Ray itself comes with ``pip install 'tingji[scale]'``.
"""
