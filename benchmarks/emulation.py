"""A Raspberry Pi OS-like ARM64 userland on this x86-64 machine, run under QEMU user-mode emulation.

Built once and cached outside the clone (~/.cache/digitsum-edge/arm64, or $DIGITSUM_EDGE_CACHE/arm64), under a
key made of what goes into it, so a change of pins or packages builds a new one beside the old:

1. `mmdebstrap --variant=extract --arch=arm64` unpacks Debian 12 bookworm's python3.11 and the libraries OpenCV
   and ONNX Runtime load (Raspberry Pi OS 64-bit is bookworm, arm64, Python 3.11); nothing in it is executed.
2. This machine's pip downloads the aarch64 wheels (manylinux, CPython 3.11) of the runtime's dependencies and
   of the litert extra, pinned to the versions installed here, so that x86 and ARM64 run the same releases.
3. The emulated pip of that userland installs the project's wheel with `[litert]` from those wheels alone
   (`--no-index --target deps`): its own markers choose onnxruntime (not onnxruntime-gpu), as on a board. The
   project itself is then removed from deps/: each run installs the checkout's wheel beside it (pure Python,
   `--no-deps`, seconds), so the cache never holds a stale copy of the project.
4. One root per CPU model, links to the userland plus its own /proc/cpuinfo: QEMU passes this machine's x86
   cpuinfo through, and ONNX Runtime (pytorch/cpuinfo) aborts on it; `-L ROOT` makes /proc/cpuinfo resolve in
   the root first. QEMU_CPU picks the core: cortex-a72 (Raspberry Pi 4) or cortex-a76 (Raspberry Pi 5).

Emulated time is not a board's time (50-300x slower, and not in proportion): nothing here measures speed.
Needs mmdebstrap and qemu-user-static (Debian packages; scripts/install-test-deps.sh installs them as root)
and the package registries (Debian's and PyPI, or their mirrors); `Unavailable` says which is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RELEASE = "bookworm"  # Raspberry Pi OS 64-bit's Debian release
PYTHON = "python3.11"  # bookworm's Python, the one a Pi user's venv gets
PACKAGES = ("python3.11", "python3-pip", "libgl1", "libglib2.0-0", "libgomp1")  # what cv2 and onnxruntime load
EXTRAS = ("litert",)  # the extras installed beside the runtime (those with aarch64 wheels)
GLIBC = 36  # bookworm's glibc 2.36: pip may take manylinux wheels up to manylinux_2_36
FORMAT = 1  # bump when the layout below changes

# QEMU_CPU name -> the board, and the /proc/cpuinfo its kernel shows (one core is enough for the runtime's probe)
CPUS = {
    "cortex-a72": ("Raspberry Pi 4", "0x0", "0xd08", "3", "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": ("Raspberry Pi 5", "0x4", "0xd0b", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
                   "asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}
# A dependency that is named differently on x86-64 Linux: its ARM64 wheel takes the version installed here.
X86_NAMES = {"onnxruntime": "onnxruntime-gpu"}


class Unavailable(Exception):
    """The userland cannot be built here: a tool, root, or a registry is missing (the message says which)."""


def cache_root() -> Path:
    base = Path(os.environ.get("DIGITSUM_EDGE_CACHE") or Path.home() / ".cache" / "digitsum-edge")
    return base / "arm64"


def cpuinfo(cpu: str) -> str:
    _, variant, part, revision, features = CPUS[cpu]
    return (f"processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
            f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n")


def _run(args: Sequence[object], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)


def build_wheel(out: Path) -> Path:
    """The checkout's wheel (pure Python), built with this Python's pip."""
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out,
                  Path(__file__).resolve().parents[1]], 300)
    if built.returncode != 0:
        raise RuntimeError(f"cannot build the wheel: {built.stderr.strip()[-2000:]}")
    return max(out.glob("digitsum_edge-*.whl"), key=lambda p: p.stat().st_mtime)


def _aarch64_environment() -> dict[str, str]:
    return {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux",
            "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix"}


def requirements(wheel: Path, extras: Sequence[str] = EXTRAS) -> list[str]:
    """The wheel's requirements on bookworm arm64 with `extras`, pinned to the versions installed here."""
    import zipfile

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    pins = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        env = _aarch64_environment()
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)):
            continue
        if req.name == "digitsum-edge":
            continue
        try:
            version = importlib.metadata.version(X86_NAMES.get(req.name, req.name))
            pins.append(f"{req.name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(str(Requirement(f"{req.name}{req.specifier}")))
    return sorted(pins)


class Userland:
    """The cached bookworm arm64 userland with the runtime's dependencies installed; `python()` runs its Python."""

    def __init__(self, pins: Sequence[str], base: Path | None = None) -> None:
        self.pins = list(pins)
        key = hashlib.sha256(json.dumps([FORMAT, RELEASE, PACKAGES, self.pins, sorted(CPUS)]).encode()).hexdigest()
        self.base = base or cache_root()
        self.dir = self.base / key[:16]
        self.root, self.wheels, self.deps = self.dir / "root", self.dir / "wheels", self.dir / "deps"
        self.stamp = self.dir / "ready.json"

    @property
    def ready(self) -> bool:
        return self.stamp.is_file()

    def cpu_root(self, cpu: str) -> Path:
        return self.dir / "cpus" / cpu

    def ensure(self, wheel: Path, log=print) -> dict:
        """Build what is missing (under a lock: one builder at a time); the stamp's facts (sizes, versions)."""
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.ready:
                started = time.monotonic()
                self._build(wheel, log)
                facts = {"built_s": round(time.monotonic() - started, 1), **self._facts(wheel)}
                tmp = self.stamp.with_suffix(".tmp")
                tmp.write_text(json.dumps(facts, indent=2))
                tmp.rename(self.stamp)
        return json.loads(self.stamp.read_text())

    def _build(self, wheel: Path, log) -> None:
        for tool in ("mmdebstrap", "qemu-aarch64-static"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed (apt-get install mmdebstrap qemu-user-static)")
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a build that stopped half-way
        self.dir.mkdir(parents=True)
        log(f"arm64: unpacking Debian {RELEASE} arm64 ({', '.join(PACKAGES)}) into {self.root}")
        mode = [] if os.geteuid() == 0 else ["--mode=unshare"]
        done = _run(["mmdebstrap", "--quiet", "--variant=extract", "--arch=arm64", *mode,
                     f"--include={','.join(PACKAGES)}", RELEASE, self.root], 900)
        if done.returncode != 0 or not (self.root / "usr" / "bin" / PYTHON).exists():
            why = done.stderr.strip().splitlines()[-1:] or ["no python3.11 in the result"]
            raise Unavailable(f"mmdebstrap cannot unpack bookworm arm64{'' if os.geteuid() == 0 else ' (not root)'}: "
                              f"{why[0]}")
        shutil.rmtree(self.root / "tmp", ignore_errors=True)  # /tmp is this machine's (QEMU maps paths that exist)
        for cpu in CPUS:  # the userland's top-level folders, and a /proc/cpuinfo of this core
            root = self.cpu_root(cpu)
            (root / "proc").mkdir(parents=True)
            for entry in self.root.iterdir():
                if entry.name != "proc":
                    (root / entry.name).symlink_to(entry)
            (root / "proc" / "cpuinfo").write_text(cpuinfo(cpu))
        log(f"arm64: downloading aarch64 wheels: {' '.join(self.pins)}")
        tags = [f"--platform=manylinux_2_{v}_aarch64" for v in range(17, GLIBC + 1)]
        done = _run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--dest",
                     self.wheels, "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                     "--platform=manylinux2014_aarch64", *tags, *self.pins], 900)
        if done.returncode != 0:
            raise Unavailable(f"pip cannot download the aarch64 wheels: "
                              f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
        log("arm64: installing them with the emulated pip (a minute or two)")
        extras = f"[{','.join(EXTRAS)}]" if EXTRAS else ""
        done = self.python(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                            "--no-cache-dir", "--find-links", self.wheels, "--target", self.deps, f"{wheel}{extras}"],
                           cpu="cortex-a76", timeout=1800, pythonpath=())
        if done.returncode != 0:
            raise RuntimeError(f"the emulated pip failed: {done.stderr.strip()[-2000:]}")
        for own in self.deps.glob("digitsum_edge*"):
            shutil.rmtree(own)
        shutil.rmtree(self.deps / "bin", ignore_errors=True)  # console scripts with this machine's paths

    def _facts(self, wheel: Path) -> dict:
        """What was installed, and its size on disk: the runtime alone and with each extra (from the RECORDs)."""
        from packaging.requirements import Requirement

        dists = {_name(d.metadata["Name"]): d
                 for d in importlib.metadata.distributions(path=[str(self.deps)])}

        def size(name: str) -> int:
            files = dists[name].files or []
            return sum((self.deps / f).stat().st_size for f in files if (self.deps / f).is_file())

        def closure(names: Sequence[str]) -> set[str]:
            seen: set[str] = set()
            todo = [_name(n) for n in names]
            while todo:
                name = todo.pop()
                if name in seen or name not in dists:
                    continue
                seen.add(name)
                for line in dists[name].requires or []:
                    req = Requirement(line)
                    if not req.marker or req.marker.evaluate({**_aarch64_environment(), "extra": ""}):
                        todo.append(_name(req.name))
            return seen

        runtime = [p.split("==")[0] for p in requirements(wheel, ())]
        wheel_kb = wheel.stat().st_size // 1024
        sizes = {"runtime": closure(runtime)}
        for extra in EXTRAS:
            sizes[extra] = closure([p.split("==")[0] for p in requirements(wheel, (extra,))]) - sizes["runtime"]
        return {
            "release": f"Debian 12 {RELEASE} arm64", "python": PYTHON, "userland_mb": _mb(_du(self.root)),
            "deps_mb": _mb(_du(self.deps)),
            "installed": {name: d.version for name, d in sorted(dists.items())},
            "install_mb": {k: round(sum(size(n) for n in v) / 2**20, 1) for k, v in sizes.items()},
            "install_packages": {k: sorted(v) for k, v in sizes.items()},
            "project_wheel_kb": wheel_kb,
        }

    def install(self, wheel: Path, target: Path) -> None:
        """The checkout's wheel into `target` (pure Python: this pip unpacks it as the emulated one would)."""
        done = _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                     "--no-compile", "--target", target, wheel], 300)
        if done.returncode != 0:
            raise RuntimeError(f"cannot install {wheel.name}: {done.stderr.strip()[-2000:]}")
        self.project = target

    def python(self, args: Sequence[object], cpu: str, timeout: float = 3600, pythonpath: Sequence[Path] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
        """The userland's python3.11 with `args` on the emulated `cpu`; the project and its dependencies on
        sys.path (pythonpath=(): neither)."""
        paths = [getattr(self, "project", None), self.deps] if pythonpath is None else list(pythonpath)
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
               "QEMU_CPU": cpu, "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": os.pathsep.join(str(p) for p in paths if p)}
        root = self.cpu_root(cpu) if self.cpu_root(cpu).exists() else self.root
        return _run(["qemu-aarch64-static", "-L", root, self.root / "usr" / "bin" / PYTHON, *args], timeout,
                    env=env, cwd=cwd)

    def cli(self, args: Sequence[object], cpu: str, timeout: float = 3600, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
        """`digitsum-edge ARGS` in the userland (the console script's own two lines)."""
        return self.python(["-c", "import sys; from digitsum_edge.cli import main; sys.argv[0] = 'digitsum-edge'; "
                            "main()", *args], cpu, timeout, cwd=cwd)


def _name(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _du(path: Path) -> int:
    """Bytes in the files under `path`, as `du` counts them: links not followed, a hard-linked file once."""
    seen: dict[tuple[int, int], int] = {}
    for top, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(top, f))
            seen[st.st_dev, st.st_ino] = st.st_size
    return sum(seen.values())


def _mb(size: int) -> float:
    return round(size / 2**20, 1)


def host() -> dict:
    return {"machine": platform.machine(), "python": platform.python_version()}
