"""A protoc plugin that writes Python stubs with grpcio-tools.

grpcio-tools ships no protoc-gen-* executable: its Python and gRPC-Python
generators live inside the protoc it bundles (the module grpc_tools.protoc).
buf can only run the gRPC one as a plugin, so this script is that plugin: it
hands buf's request (the compiled files and their imports) to the bundled
protoc as a descriptor set and returns what it wrote. Run it with the venv's
interpreter, so the pinned grpcio-tools decides the output.

With the parameter `package=NAME` (buf: `opt: package=NAME`) the generated
modules live under the Python package NAME instead of at the top level:
protoc writes `from kv.v1 import kv_pb2`, which would need a top-level `kv`
package (a name PyPI already gives to another project), so those imports,
and the module names the messages record, get the NAME. prefix. protoc has
no option for this (grpc/grpc#9575), and protoletariat, which does it,
requires protobuf < 6. An empty `__init__.py` is written in every generated
directory, so they are regular packages a wheel includes.
"""

import pathlib
import re
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
        package = dict(p.split("=", 1) for p in request.parameter.split(",") if p).get("package")
        if package:
            roots = {name.split("/", 1)[0] for name in request.file_to_generate}
            for path in out.rglob("*.py"):
                path.write_text(under_package(path.read_text(encoding="utf-8"), package, roots), encoding="utf-8")
            for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
                directory.joinpath("__init__.py").touch()
        # Sorted, and decoded as UTF-8 whatever the locale, so the files buf
        # writes never depend on the machine.
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=path.relative_to(out).as_posix(), content=path.read_bytes().decode("utf-8"))
    return response


def under_package(source: str, package: str, roots: set) -> str:
    """Prefixes the generated modules' imports of each other, and their recorded module names, with package."""
    names = "|".join(re.escape(root) for root in sorted(roots))
    source = re.sub(rf"^from ((?:{names})(?:\.\w+)*) import ", rf"from {package}.\1 import ", source, flags=re.M)
    return re.sub(rf"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'((?:{names})\.[\w.]+)'", rf"\1'{package}.\2'", source)


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
