"""tingji's test suite. Imported before anything else of it: the session leaves the machine's
network for one with only loopback first (:mod:`tests.netns`)."""

from tests import netns

NETWORK = netns.isolate()
