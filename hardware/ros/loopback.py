"""Cyclone DDS configuration for machines whose loopback has no multicast (CI, containers, laptops offline)."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

MAX_PARTICIPANTS = 32
"""Participants per domain on this host: unicast discovery probes one port per participant index."""


def loopback_config(max_participants: int = MAX_PARTICIPANTS) -> str:
    """CYCLONEDDS_URI contents: interface `lo`, multicast off, unicast discovery to 127.0.0.1.

    Without multicast, SPDP discovery goes to the peer's well-known unicast ports, one per participant
    index; `ParticipantIndex auto` gives each process its own index on this host. Large samples (images)
    are sent in 64 KB datagrams, which loopback carries unfragmented.
    """
    return (
        "<CycloneDDS><Domain Id=\"any\"><General><Interfaces><NetworkInterface name=\"lo\"/></Interfaces>"
        "<AllowMulticast>false</AllowMulticast><MaxMessageSize>65500B</MaxMessageSize></General>"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{max_participants - 1}</MaxAutoParticipantIndex>"
        "<Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>"
        "<Internal><SocketReceiveBufferSize min=\"default\"/></Internal></Domain></CycloneDDS>"
    )


def use_loopback(
    env: MutableMapping[str, str] | None = None, *, domain_id: int | None = None
) -> MutableMapping[str, str]:
    """Set CYCLONEDDS_URI (and optionally ROS_DOMAIN_ID) in `env` (default os.environ) before any node starts."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    target["CYCLONEDDS_URI"] = loopback_config()
    if domain_id is not None:
        target["ROS_DOMAIN_ID"] = str(domain_id)
    return target


def apply_dds_options(env: MutableMapping[str, str] | None = None, *, loopback: bool = False,
                      domain_id: int | None = None) -> MutableMapping[str, str]:
    """What the `--loopback` / `--domain-id` flags of realrl's commands do, in `env` (default os.environ), before
    any participant exists: the loopback Cyclone config and the ROS_DOMAIN_ID, each only when asked for."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    if domain_id is not None:
        target["ROS_DOMAIN_ID"] = str(domain_id)
    if loopback:
        target["CYCLONEDDS_URI"] = loopback_config()
    return target
