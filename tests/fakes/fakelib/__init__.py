"""Implementation of the docker/kind/kubectl/flux fakes (see ../README.md)."""
