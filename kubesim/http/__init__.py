"""The HTTP face of kubesim (aiohttp): routing, verbs, streaming and control endpoints."""
