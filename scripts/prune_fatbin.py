"""Keep one GPU architecture's kernels in a shared library's CUDA fat binary, and drop the others' entries.

onnxruntime-gpu's CUDA provider (libonnxruntime_providers_cuda.so, 270 MB) holds each kernel file for sm_75, 80,
86, 89, 90a and 120a, zstd-compressed; an H100 or H200 runs the sm_90a ones only. In every fat-binary
container that has an entry for the kept architecture, the other entries are removed: the kept ones move to the
front, the container's header gets the smaller size, and the bytes freed up to the container's old end become
zeros. No container moves (the host code points at each one), containers without the kept architecture stay as
they were, and the zeros compress to nothing (the library packs to about 50 MB with xz). Checked with cuobjdump:
it lists the pruned library's entries, and the sm_90a cubins it extracts are byte for byte the original's. On
any other GPU the pruned library has no code to run: it is for that check on a Hopper machine only, never for users.

    python scripts/prune_fatbin.py LIB [--keep 90]

Fat-binary layout (what cuobjdump reads): containers of a 16-byte header (magic 0xBA55ED50, version, header size,
size of the entries) and entries, each a header (kind, version, header size, padded payload size, compressed
size, ..., arch, ...) then its payload.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
from collections import Counter
from pathlib import Path

MAGIC = 0xBA55ED50  # a fat-binary container


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
    """Drop the entries of other architectures from each container that has one for `keep`; bytes per
    (kept | dropped | untouched, arch)."""
    data = bytearray(path.read_bytes())
    offset, size = fatbin_section(path)
    pos, seen = 0, Counter()
    while pos + 16 <= size:
        magic, _, header, length = struct.unpack_from("<IHHQ", data, offset + pos)
        if magic != MAGIC:  # alignment padding (or a gap left by an earlier pruning) between containers
            pos += 8
            continue
        entry, end, entries = pos + header, pos + header + length, []
        while entry < end:
            _, _, entry_header, payload, _, _, _, _, arch = struct.unpack_from("<HHIQIIHHI", data, offset + entry)
            entries.append((arch, bytes(data[offset + entry:offset + entry + entry_header + payload])))
            entry += entry_header + payload
        if entry != end:
            raise SystemExit(f"error: {path}: a fat-binary container does not end where its header says (unchanged)")
        if any(arch == keep for arch, _ in entries):
            body = b"".join(raw for arch, raw in entries if arch == keep)
            data[offset + pos + header:offset + end] = body + bytes(length - len(body))
            struct.pack_into("<Q", data, offset + pos + 8, len(body))
            for arch, raw in entries:
                seen[("kept" if arch == keep else "dropped", arch)] += len(raw)
        else:
            for arch, raw in entries:
                seen[("untouched", arch)] += len(raw)
        pos = end
    path.write_bytes(data)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--keep", type=int, default=90, help="the architecture to keep (90: sm_90/sm_90a, Hopper)")
    args = parser.parse_args()
    seen = prune(args.library, args.keep)

    def mib(what: str) -> float:
        return sum(v for k, v in seen.items() if k[0] == what) / 2**20

    archs = ", ".join(f"sm_{a}" for a in sorted({k[1] for k in seen}))
    print(f"{args.library.name}: kept {mib('kept'):.1f} MiB of sm_{args.keep} code, dropped {mib('dropped'):.1f} "
          f"MiB, left {mib('untouched'):.1f} MiB in containers without it (architectures found: {archs})")


if __name__ == "__main__":
    main()
