"""Typed application state keys (the keyring's and peer client's live beside their classes)."""

from __future__ import annotations

from aiohttp import web

from node.home import Node

NODE = web.AppKey("node", Node)
PUBLIC_ROUTES = web.AppKey("public_routes", frozenset)
STREAMING_ROUTES = web.AppKey("streaming_routes", frozenset)
REQUIRED_COMPONENTS = web.AppKey("required_components", dict)  # (method, path) -> header names signed
