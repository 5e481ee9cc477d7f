"""The envelope parameters this node seals with and the limits it opens with, from its configuration."""

from __future__ import annotations

from node.config import NodeConfig
from protocol.envelope_format import Argon2Params, OpenPolicy


def sealing_argon2(config: NodeConfig) -> Argon2Params:
    return Argon2Params(
        time_cost=config.envelope.argon2_time_cost, memory_kib=config.envelope.argon2_memory_kib
    )


def open_policy(config: NodeConfig) -> OpenPolicy:
    env = config.envelope
    return OpenPolicy(
        min_argon2=Argon2Params(time_cost=env.min_argon2_time_cost, memory_kib=env.min_argon2_memory_kib),
        max_payload_length=env.max_size_mib * 1024 * 1024,
    )
