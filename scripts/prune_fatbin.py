"""Keep one GPU architecture's kernels in a shared library's CUDA fat binary: zero the others' code.

onnxruntime-gpu's CUDA provider (libonnxruntime_providers_cuda.so, 270 MB) holds its kernels for sm_75, 80, 86,
89, 90 and 120; a lent H100 or H200 runs the sm_90 ones only. Every other entry's payload is overwritten with
zeros, in place: the file keeps its size, layout and every fat-binary header, so the CUDA runtime registers it as
before and picks the sm_90 code on a Hopper GPU, and the zeros compress to nothing (the .so packs to about 52 MB
with xz instead of far more). On any other GPU the pruned library cannot run its kernels: it is for the lent
machine only, never for users.

    python scripts/prune_fatbin.py LIB [--keep 90]

Fat-binary layout (what cuobjdump reads): containers of a 16-byte header (magic 0xBA55ED50, version, header size,
size of the entries) and entries, each a header (kind, version, header size, payload size, ..., arch) then its
payload.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
from collections import Counter
from pathlib import Path

MAGIC = 0xBA55ED50


def fatbin_section(path: Path) -> tuple[int, int]:
    """(file offset, size) of the .nv_fatbin section, read with readelf."""
    listing = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        if ".nv_fatbin" in line:
            fields = line.split()
            i = fields.index("PROGBITS")
            return int(fields[i + 2], 16), int(fields[i + 3], 16)
    raise SystemExit(f"error: {path} has no .nv_fatbin section")


def prune(path: Path, keep: int) -> Counter:
    """Zero every entry's payload whose arch is not `keep`; bytes kept and zeroed per (kind, arch)."""
    data = bytearray(path.read_bytes())
    offset, size = fatbin_section(path)
    pos, seen = 0, Counter()
    while pos + 16 <= size:
        magic, _, header, entries = struct.unpack_from("<IHHQ", data, offset + pos)
        if magic != MAGIC:  # alignment padding between containers
            pos += 8
            continue
        entry, end = pos + header, pos + header + entries
        while entry < end:
            kind, _, entry_header, payload, _, _, _, _, arch = struct.unpack_from("<HHIQIIHHI", data, offset + entry)
            start = offset + entry + entry_header
            if arch != keep:
                data[start:start + payload] = bytes(payload)
            seen[("kept" if arch == keep else "zeroed", kind, arch)] += payload
            entry += entry_header + payload
        if entry != end:
            raise SystemExit(f"error: {path}: a fat-binary container does not end where its header says (unchanged)")
        pos = end
    path.write_bytes(data)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--keep", type=int, default=90, help="the architecture to keep (90: sm_90, Hopper)")
    args = parser.parse_args()
    seen = prune(args.library, args.keep)
    kept = sum(v for k, v in seen.items() if k[0] == "kept")
    zeroed = sum(v for k, v in seen.items() if k[0] == "zeroed")
    archs = sorted({k[2] for k in seen})
    print(f"{args.library.name}: kept {kept / 2**20:.1f} MiB of sm_{args.keep} code, zeroed {zeroed / 2**20:.1f} MiB "
          f"(architectures found: {', '.join(f'sm_{a}' for a in archs)})")


if __name__ == "__main__":
    main()
