"""realrl's robot layer: contracts (robot.core), the one env API, wrappers, sessions and the CLI."""

__version__ = "0.1.0"
