"""The iden3 binary container used by .r1cs, .wtns, .ptau and .zkey files.

Layout: 4-byte magic, u32 version, u32 section count, then sections of (u32 id, u64 size, data),
all little-endian. snarkjs locates sections by id, so order only matters for byte-identical
output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IntegrityError


@dataclass
class BinFile:
    magic: bytes
    version: int
    sections: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # id -> [(offset, size)]
    data: bytes = b""

    def section(self, section_id: int) -> memoryview:
        entries = self.sections.get(section_id)
        if not entries:
            raise IntegrityError(f"{self.magic.decode(errors='replace')} file has no section {section_id}")
        offset, size = entries[0]
        return memoryview(self.data)[offset: offset + size]


def read_binfile(path: str | Path, magic: bytes) -> BinFile:
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != magic:
        raise IntegrityError(
            f"{path} is not a .{magic.decode()} file (bad magic bytes); it may be truncated or of "
            "another kind: regenerate it"
        )
    version, count = struct.unpack_from("<II", data, 4)
    pos = 12
    sections: dict[int, list[tuple[int, int]]] = {}
    for _ in range(count):
        if pos + 12 > len(data):
            raise IntegrityError(f"{path} is truncated (section table runs past the end)")
        sid, size = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if pos + size > len(data):
            raise IntegrityError(f"{path} is truncated (section {sid} runs past the end)")
        sections.setdefault(sid, []).append((pos, size))
        pos += size
    return BinFile(magic, version, sections, data)


class BinWriter:
    """Writes sections in the order they are added."""

    def __init__(self, magic: bytes, version: int = 1):
        self.magic = magic
        self.version = version
        self._sections: list[tuple[int, list[bytes]]] = []

    def add(self, section_id: int, *chunks: bytes) -> None:
        self._sections.append((section_id, [bytes(c) for c in chunks]))

    def to_bytes(self) -> bytes:
        out = [self.magic, struct.pack("<II", self.version, len(self._sections))]
        for sid, chunks in self._sections:
            out.append(struct.pack("<IQ", sid, sum(len(c) for c in chunks)))
            out.extend(chunks)
        return b"".join(out)
