#!/usr/bin/python3
"""gRPC health probe for tshared (the container's HEALTHCHECK).

Usage: health_check.py [HOST:PORT] [SERVICE]
Calls grpc.health.v1.Health/Check for SERVICE ("" = the whole server, or e.g.
"tshare.v1.Shares") on HOST:PORT (default 127.0.0.1:7420). Exits 0 when the
answer is SERVING, 1 otherwise (not serving, unknown service, no answer within
the timeout), printing why.

Needs only python3-grpcio: the two messages are encoded by hand (both have a
single field 1), so no generated code or grpc_health package is required.
"""

import sys

import grpc

TIMEOUT_SECONDS = 3
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_request(service):
    """HealthCheckRequest{service = 1}."""
    data = service.encode("utf-8")
    return b"\x0a" + varint(len(data)) + data if data else b""


def decode_status(response):
    """HealthCheckResponse{status = 1 (enum)}: the status, 0 if absent."""
    status, i = 0, 0
    while i < len(response):
        key = response[i]
        i += 1
        value, shift = 0, 0
        while True:  # every field of this message is a varint
            byte = response[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x08:
            status = value
    return status


def main(argv):
    address = argv[1] if len(argv) > 1 else "127.0.0.1:7420"
    service = argv[2] if len(argv) > 2 else ""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            response = check(encode_request(service), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            print(f"{address} {service!r}: {error.code().name}: {error.details()}")
            return 1
    status = decode_status(response)
    name = STATUS_NAMES.get(status, str(status))
    print(f"{address} {service!r}: {name}")
    return 0 if status == 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
