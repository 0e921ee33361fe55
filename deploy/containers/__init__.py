"""Containers: the engine bootstrap, the images and the compose stack (see docs/containers.md)."""
