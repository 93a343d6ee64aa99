"""Endpoints and credentials of the examples, from the environment (defaults suit a
zerobus-local started with its default ports and credentials)."""
import os

server_endpoint = os.environ.get("ZEROBUS_SERVER_ENDPOINT", "http://127.0.0.1:50051")
workspace_url = os.environ.get("ZEROBUS_WORKSPACE_URL", "http://127.0.0.1:8080")
table_name = os.environ.get("ZEROBUS_TABLE", "main.default.air_quality")
client_id = os.environ.get("ZEROBUS_CLIENT_ID", "test-client")
client_secret = os.environ.get("ZEROBUS_CLIENT_SECRET", "test-secret")
