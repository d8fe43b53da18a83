"""The kv Python client: the generated gRPC stubs of kv.v1.

    import grpc
    from kv_client import kv_pb2, kv_pb2_grpc

    with grpc.insecure_channel("127.0.0.1:50051") as channel:
        kv = kv_pb2_grpc.KeyValueServiceStub(channel)

The stubs are generated into kv_client.gen (scripts/generate-clients.sh);
this module only gives them short names.
"""

from kv_client.gen.kv.v1 import kv_pb2, kv_pb2_grpc

__all__ = ["kv_pb2", "kv_pb2_grpc"]
