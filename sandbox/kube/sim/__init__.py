"""The parts of one sandbox cluster's simulation, one per resource, composed by sandbox.kube.controller
(whose docstring lists them and says why they are composed)."""
