"""MCP server over the engine: tools, resources, stdio and streamable HTTP transports."""

from .server import ITEM_URI, PROFILE_URI, WRITE_TOOLS, build_server

__all__ = ["ITEM_URI", "PROFILE_URI", "WRITE_TOOLS", "build_server"]
