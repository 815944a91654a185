"""Calls and streaming: what a runner sees of a call, SSE and the event store, requests to the client,
cancellation, and adopting the calls of a replica that died."""
