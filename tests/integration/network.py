"""The test network lives in mercato.devnet (benchmarks use it too)."""

from mercato.devnet import RunningNetwork, start_network, write_test_config

__all__ = ["RunningNetwork", "start_network", "write_test_config"]
