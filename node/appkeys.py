"""Typed application state keys."""

from __future__ import annotations

from aiohttp import web

from node.home import Node

NODE = web.AppKey("node", Node)
PUBLIC_ROUTES = web.AppKey("public_routes", frozenset)
