"""Command-line tools: ``python -m zerobus.tools.generate_proto``."""
