"""gRPC helpers: TLS, servers and channels with bounded sizes, keepalive and deadlines, status mapping."""
