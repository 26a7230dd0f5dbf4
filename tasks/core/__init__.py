"""The shared core: configuration, the run's context and tools, state, console, Kubernetes and Docker reads, and small helpers every other part uses."""
