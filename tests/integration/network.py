"""The test network lives in mercato_ops.testnet (benchmarks use it too)."""

from mercato_ops.testnet import RunningNetwork, start_network, write_test_config

__all__ = ["RunningNetwork", "start_network", "write_test_config"]
