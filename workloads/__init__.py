"""Workloads: trained digits SNNs, CIFAR-scale and detection topologies, the demo."""
