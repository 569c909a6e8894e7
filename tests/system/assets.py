"""Build the guest's kernel and initramfs from Debian packages, cached in tests/system/.cache/.

The guest boots Debian's bookworm-backports kernel (it has uinput as a module, but no gpio-sim: that one is built
out of tree against the same kernel's headers from Debian's linux-source). Packages come from the package
registry through a private APT configuration, so the host's sources and package database are never touched, and
nothing is installed: `apt-get download` and `dpkg-deb -x` only. The kernel version is resolved when the cache is
built, since old versions leave the mirror.

The initramfs is busybox plus the few modules the guest needs before and after its root is mounted (9p and
overlay for the root, evdev/uinput/gpio-sim/configfs for the tests, virtio_blk/ext4 for the power-cut disk). The
host has no depmod, so module dependencies are read from each module's own `.modinfo`.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MIRROR = "http://deb.debian.org/debian"
FORMAT = 6  # bump when the layout of the built assets changes, so old caches are rebuilt

# Loaded in this order (dependencies first, resolved from .modinfo) by the initramfs.
GUEST_MODULES = ("netfs", "9pnet", "9pnet_virtio", "9p", "overlay", "configfs", "evdev", "uinput",
                 "virtio_blk", "crc32c_generic", "ext4")  # ext4 asks the crypto API for crc32c by name
GPIO_SIM_SOURCES = ("drivers/gpio/gpio-sim.c", "kernel/irq/irq_sim.c", "include/linux/irq_sim.h")


class AssetError(Exception):
    """The guest's kernel or initramfs could not be built (a registry, tool or build problem)."""


@dataclass(frozen=True)
class Assets:
    kernel: Path  # vmlinuz
    initrd: Path  # initrd.gz
    udev_root: Path  # the udev package unpacked: copied into the guest's root (the host has no udev)
    release: str  # kernel release, e.g. '6.12.95+deb12-amd64'


def ensure_assets(cache: Path = CACHE, log=print) -> Assets:
    """The built assets, building them first if the cache lacks them. Safe against concurrent runs (a lock)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = cache / "assets" / "done"
        if done.exists() and done.read_text().split()[0] == str(FORMAT):
            return _assets(cache / "assets", done.read_text().split()[1])
        started = time.monotonic()
        assets = _build(cache, log)
        done.write_text(f"{FORMAT} {assets.release}\n")
        log(f"guest assets built in {time.monotonic() - started:.0f} s")
        return assets


def _assets(out: Path, release: str) -> Assets:
    return Assets(out / "vmlinuz", out / "initrd.gz", out / "udev", release)


def _build(cache: Path, log) -> Assets:
    apt = PrivateApt(cache / "apt")
    log("guest assets: resolving packages")
    apt.update()
    release = apt.depends_on("linux-image-amd64", "linux-image-", "bookworm-backports")
    version = release.removesuffix("-amd64")
    udev_version = _installed_version("systemd")  # udev must match the host's systemd it runs beside
    packages = [f"linux-image-{release}", f"linux-headers-{release}", f"linux-headers-{version}-common",
                f"linux-kbuild-{version}", f"linux-source-{_major_minor(version)}", "busybox-static",
                f"udev={udev_version}"]
    log(f"guest assets: downloading kernel {release} and friends")
    debs = apt.download(packages, cache / "debs")
    tree = cache / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    for deb in debs:
        if "linux-source" not in deb.name and not deb.name.startswith("udev_"):
            _run(["dpkg-deb", "-x", str(deb), str(tree)])
    out = cache / "assets"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    unpack_merged_usr(_one(debs, "udev_"), out / "udev")
    log("guest assets: building gpio-sim")
    gpio_sim = build_gpio_sim(tree, release, _one(debs, "linux-source"), cache / "gpio-sim")
    shutil.copy(tree / "boot" / f"vmlinuz-{release}", out / "vmlinuz")
    modules = resolve_modules(tree / "lib" / "modules" / release, GUEST_MODULES)
    write_initramfs(out / "initrd.gz", tree / "bin" / "busybox", modules + [gpio_sim])
    shutil.rmtree(tree)  # 400 MB that only the build needs; the packages stay in the apt cache
    return _assets(out, release)


def unpack_merged_usr(deb: Path, target: Path) -> None:
    """Unpack a bookworm package (files under /bin, /lib, /sbin) in the host's merged-/usr layout, so that
    copying it over the guest's root never meets a directory where the root has a symlink (/lib -> usr/lib)."""
    _run(["dpkg-deb", "-x", str(deb), str(target)])
    for top in ("bin", "sbin", "lib"):
        if (target / top).is_dir():
            _run(["cp", "-a", f"{target / top}/.", str(target / "usr" / top)])
            shutil.rmtree(target / top)
    shutil.rmtree(target / "usr" / "share" / "doc", ignore_errors=True)


class PrivateApt:
    """apt-get with its own sources, lists and cache under `root`; the system's apt state is left alone."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("lists/partial", "archives/partial", "parts"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "sources.list").write_text(
            f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n"
            f"deb {MIRROR} bookworm-backports main\ndeb {MIRROR}-security bookworm-security main\n")
        (root / "apt.conf").write_text("\n".join([
            f'Dir::Etc::SourceList "{root}/sources.list";', f'Dir::Etc::SourceParts "{root}/parts";',
            f'Dir::State::Lists "{root}/lists";', f'Dir::Cache "{root}";', f'Dir::Cache::Archives "{root}/archives";',
            'Dir::State::status "/dev/null";', 'APT::Sandbox::User "root";', 'APT::Architecture "amd64";', ""]))
        self.env = {**os.environ, "APT_CONFIG": str(root / "apt.conf"), "LC_ALL": "C"}

    def update(self) -> None:
        _run(["apt-get", "update", "-qq"], env=self.env)

    def depends_on(self, package: str, prefix: str, release: str) -> str:
        """The name after `prefix` of the package `package` (a metapackage) depends on in `release`."""
        text = _run(["apt-cache", "depends", "-t", release, package], env=self.env)
        found = re.search(rf"Depends: {re.escape(prefix)}(\S+)", text)
        if not found:
            raise AssetError(f"cannot tell which kernel {package} in {release} depends on:\n{text}")
        return found.group(1)

    def download(self, packages: list[str], into: Path) -> list[Path]:
        into.mkdir(parents=True, exist_ok=True)
        for old in into.glob("*.deb"):
            old.unlink()
        _run(["apt-get", "download", "-qq", *packages], env=self.env, cwd=into)
        return sorted(into.glob("*.deb"))


def build_gpio_sim(tree: Path, release: str, source_deb: Path, work: Path) -> Path:
    """gpio-sim.ko built out of tree (Debian builds neither GPIO_SIM nor IRQ_SIM), with irq_sim linked in."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "include" / "linux").mkdir(parents=True)
    sources = _extract_from_linux_source(source_deb, GPIO_SIM_SOURCES)
    (work / "gpio-sim-main.c").write_bytes(sources["drivers/gpio/gpio-sim.c"])
    irq_sim = sources["kernel/irq/irq_sim.c"].decode()
    # irq_to_desc() is not exported to modules; generic_handle_irq() does the same for a simple IRQ.
    irq_sim = irq_sim.replace("handle_simple_irq(irq_to_desc(irqnum))", "generic_handle_irq(irqnum)")
    (work / "irq_sim.c").write_text(irq_sim)
    (work / "include" / "linux" / "irq_sim.h").write_bytes(sources["include/linux/irq_sim.h"])
    (work / "Kbuild").write_text("obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n"
                                 "ccflags-y := -I$(src)/include\n")
    headers = tree / "usr" / "src" / f"linux-headers-{release}"
    _fix_common_link(tree, headers)
    # No pahole here, so no BTF for the module; the kernel loads it without.
    _run(["make", "-s", "-C", str(headers), f"M={work}", "CONFIG_DEBUG_INFO_BTF_MODULES=", "modules"])
    return work / "gpio-sim.ko"


def _fix_common_link(tree: Path, headers: Path) -> None:
    """The arch headers include the common ones by absolute path: point that at the unpacked tree."""
    makefile = headers / "Makefile"
    makefile.write_text(makefile.read_text().replace("/usr/src/", f"{tree}/usr/src/"))


def _extract_from_linux_source(deb: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    """Read a few files out of the linux-source tarball inside the .deb, streaming (it is 150 MB of xz)."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith(".tar.xz"))
        inner = outer.extractfile(inner_member)
        wanted, found = set(members), {}
        with tarfile.open(fileobj=inner, mode="r|xz") as source:
            for member in source:
                relative = member.name.split("/", 1)[-1]
                if relative in wanted:
                    found[relative] = source.extractfile(member).read()
                    if len(found) == len(wanted):
                        break
    missing = wanted - found.keys()
    if missing:
        raise AssetError(f"{deb.name} lacks {', '.join(sorted(missing))}")
    return found


def resolve_modules(module_dir: Path, names: tuple[str, ...]) -> list[Path]:
    """Paths of `names` and everything they depend on, dependencies first (built-in modules are skipped)."""
    index = {_module_name(p): p for p in module_dir.rglob("*.ko*")}
    ordered: list[Path] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        path = index.get(name)
        if path is None:
            if _is_builtin(module_dir, name):
                return
            raise AssetError(f"kernel module {name} (needed by {' <- '.join(chain) or 'the guest'}) not found")
        if path in ordered:
            return
        for dependency in _depends(path):
            visit(dependency, (name, *chain))
        ordered.append(path)

    for name in names:
        visit(name, ())
    return ordered


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _is_builtin(module_dir: Path, name: str) -> bool:
    builtin = (module_dir / "modules.builtin").read_text()
    return any(_module_name(Path(line)) == name for line in builtin.split())


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data


def _depends(path: Path) -> list[str]:
    found = re.search(rb"(?:^|\0)depends=([^\0]*)", _module_bytes(path))
    return [d for d in found.group(1).decode().split(",") if d] if found else []


INIT = r"""#!/bin/sh
# The guest's first process: load modules, mount the host's root read-only under a tmpfs overlay, apply the
# run's files, hand over to systemd.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /modules/order); do insmod /modules/$module || echo "tagd-vm: insmod $module failed"; done
mkdir -p /lower /rw /newroot
# cache=loose: the host's root is read-only for the guest, so caching its files and metadata is safe, and it
# makes Python's imports over 9p several times faster.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose rootfs /lower || exec sh
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || exec sh
mkdir -p /newroot/tagd-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 run /newroot/tagd-vm || exec sh
cp -a /newroot/tagd-vm/overlay/. /newroot/
# Moved, not unmounted: the overlay's /proc, /sys and /dev are the host's, exported read-only through 9p, and
# systemd would read the host's sysfs through them (and hang in 9p) before mounting its own.
for fs in proc sys dev; do mount --move /$fs /newroot/$fs; done
exec switch_root /newroot /sbin/init
"""


def write_initramfs(target: Path, busybox: Path, modules: list[Path]) -> None:
    """A gzipped newc cpio: busybox with its applets linked under /bin, /init, /modules (decompressed)."""
    stage = target.parent / "initramfs"
    shutil.rmtree(stage, ignore_errors=True)
    for sub in ("bin", "proc", "sys", "dev", "modules"):
        (stage / sub).mkdir(parents=True)
    shutil.copy(busybox, stage / "bin" / "busybox")
    for applet in ("sh", "mount", "umount", "insmod", "mkdir", "cat", "cp", "echo", "switch_root"):
        (stage / "bin" / applet).symlink_to("busybox")
    order = []
    for module in modules:
        name = module.name.split(".ko")[0] + ".ko"
        (stage / "modules" / name).write_bytes(_module_bytes(module))
        order.append(name)
    (stage / "modules" / "order").write_text("\n".join(order) + "\n")
    (stage / "init").write_text(INIT)
    (stage / "init").chmod(0o755)
    listing = _run(["sh", "-c", "find . | LC_ALL=C sort"], cwd=stage)
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=listing.encode(), cwd=stage,
                             check=True, capture_output=True).stdout
    target.write_bytes(gzip.compress(archive, compresslevel=6))
    shutil.rmtree(stage)


def _installed_version(package: str) -> str:
    return _run(["dpkg-query", "-W", "-f", "${Version}", package]).strip()


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _one(paths: list[Path], prefix: str) -> Path:
    matches = [p for p in paths if p.name.startswith(prefix)]
    if len(matches) != 1:
        raise AssetError(f"expected one package named {prefix}*, got {[p.name for p in paths]}")
    return matches[0]


def _run(command: list[str], env: dict | None = None, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise AssetError(f"{command[0]} is not installed") from exc
    if done.returncode != 0:
        raise AssetError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


if __name__ == "__main__":
    print(ensure_assets())
