"""retell-tela-mcp: an MCP server that reads Retell AI test runs and Tela test cases."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("retell-tela-mcp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
