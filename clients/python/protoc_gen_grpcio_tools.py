"""A protoc plugin that writes Python stubs with grpcio-tools.

grpcio-tools ships no protoc-gen-* executable: its Python and gRPC-Python
generators live inside the protoc it bundles (the module grpc_tools.protoc).
buf can only run the gRPC one as a plugin, so this script is that plugin: it
hands buf's request (the compiled files and their imports) to the bundled
protoc as a descriptor set and returns what it wrote. Run it with the venv's
interpreter, so the pinned grpcio-tools decides the output.
"""

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as work:
        descriptor_set = pathlib.Path(work, "input.binpb")
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = pathlib.Path(work, "out")
        out.mkdir()
        exit_code = protoc.main([
            "grpc_tools.protoc",
            f"--descriptor_set_in={descriptor_set}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ])
        if exit_code != 0:
            response.error = f"grpc_tools.protoc exited {exit_code} (its errors are above)"
            return response
        # Sorted, and decoded as UTF-8 whatever the locale, so the files buf
        # writes never depend on the machine.
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=path.relative_to(out).as_posix(), content=path.read_bytes().decode("utf-8"))
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
