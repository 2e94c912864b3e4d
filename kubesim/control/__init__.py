"""The simulated control plane: scheduler, PV binder, kubelet, garbage collector and events."""
