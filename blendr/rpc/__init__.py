"""gRPC helpers: TLS, servers and channels with bounded sizes, keepalive and deadlines, and the one place that
maps our errors to gRPC status (``status`` for the table, ``interceptor`` installed on every server)."""
