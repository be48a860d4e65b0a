"""The ASGI gateway: REST/JSON in front of gRPC methods, in process or as a proxy.

- `app`: `Gateway` and `GatewayOptions` — match, transcode, call, write, respond;
- `backends`: where a call goes (in-process implementations, an upstream server);
- `services`: finding the generated route and monitor modules of an implementation;
- `upstream`: the one grpcio channel to an upstream server (raw bytes), its options, and the
  header/metadata mapping;
- `http`: ASGI plumbing (bounded bodies, JSON and google.rpc.Status responses, disconnects);
- `observe`: what the gateway tells an observer (the monitor) about each call.
"""
