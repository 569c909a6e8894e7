"""Boot a qemu guest whose root is this host's own root, with systemd as PID 1, and run one command in it.

The host's `/` is shared read-only over 9p under a tmpfs overlay, so the guest runs the host's systemd, Python,
the project's virtual environment and this very checkout unchanged. What differs is the kernel (Debian's, with
uinput and an out-of-tree gpio-sim; see assets.py), udev (unpacked from Debian's package: the host has none), and
the files a run puts over the root before systemd starts (`overlay/` in the run directory): the test unit, masks
for host services that would only slow the boot, an empty fstab.

Each run has a writable 9p share mounted at /tagd-vm in the guest (the run directory), where the command leaves
its output and exit status. The guest has no network device: only its own loopback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .assets import CACHE, Assets

GUEST_SHARE = "/tagd-vm"  # where the run directory appears in the guest
QEMU = "qemu-system-x86_64"
TOOLS = (QEMU, "cpio", "dpkg-deb", "apt-get", "make", "gcc-12", "mkfs.ext4")
UNIT = "tagd-vm.service"
# Host services that would start in the guest and only slow its boot (or wait for hardware it does not have).
MASKED = ("getty@tty1.service", "serial-getty@ttyS0.service", "console-getty.service",
          "systemd-tmpfiles-setup.service", "systemd-tmpfiles-clean.service", "systemd-tmpfiles-clean.timer",
          "e2scrub_reap.service", "e2scrub_all.timer", "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer",
          "dpkg-db-backup.timer", "fstrim.timer", "postgresql.service", "systemd-timesyncd.service",
          "systemd-pstore.service", "systemd-networkd-wait-online.service")
INPUT_GROUP = "input"  # udev gives input devices to this group; the host lacks it, the guest gets it


def missing_tools() -> list[str]:
    """The host tools the tier needs that are not installed (then the tier is skipped, not failed)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass
class GuestRun:
    """One boot. `script` runs as root in the guest, from the guest unit; its exit status is the run's."""

    assets: Assets
    script: str
    timeout_s: float = 600.0
    memory_mb: int = 1536
    disks: tuple[Path, ...] = ()  # raw images: /dev/vda, /dev/vdb... in the guest
    port_file: Path | None = None  # the guest's /dev/virtio-ports/tagd writes land in this host file, unbuffered
    directory: Path = field(default_factory=lambda: _run_directory())

    def prepare(self) -> None:
        overlay = self.directory / "overlay"
        shutil.copytree(self.assets.udev_root, overlay, symlinks=True, dirs_exist_ok=True)
        units = overlay / "etc" / "systemd" / "system"
        (units / "multi-user.target.wants").mkdir(parents=True, exist_ok=True)
        for unit in MASKED:
            (units / unit).symlink_to("/dev/null")
        (units / UNIT).write_text(_unit_text())
        (units / "multi-user.target.wants" / UNIT).symlink_to(f"../{UNIT}")
        (overlay / "etc" / "fstab").write_text("# the tagd VM tier: nothing to mount\n")
        (overlay / "etc" / "group").write_text(_group_file())
        (overlay / "etc" / "hostname").write_text("tagd-vm\n")
        (self.directory / "run.sh").write_text(self.script)

    def command(self) -> list[str]:
        # no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can time out and panic.
        line = ["console=ttyS0", "panic=-1", "no_timer_check", "loglevel=4", "systemd.show_status=true",
                "systemd.firstboot=no", "systemd.journald.forward_to_console=0"]
        command = [QEMU, "-accel", "tcg", "-m", str(self.memory_mb), "-smp", "2", "-display", "none",
                   "-monitor", "none", "-no-reboot", "-nodefaults", "-serial", f"file:{self.directory}/console.log",
                   "-kernel", str(self.assets.kernel), "-initrd", str(self.assets.initrd),
                   "-append", " ".join(line),
                   "-virtfs", "local,path=/,mount_tag=rootfs,security_model=none,readonly=on,multidevs=remap",
                   "-virtfs", f"local,path={self.directory},mount_tag=run,security_model=none,multidevs=remap"]
        for disk in self.disks:
            command += ["-drive", f"file={disk},if=virtio,format=raw,cache=writeback"]
        if self.port_file is not None:
            command += ["-device", "virtio-serial-pci", "-chardev", f"file,id=tagd,path={self.port_file}",
                        "-device", "virtserialport,chardev=tagd,name=tagd"]
        return command

    def start(self) -> subprocess.Popen:
        """Boot in the background (for tests that cut the power); `finish` or `kill` it."""
        self.prepare()
        self.started = time.monotonic()
        return subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def run(self) -> "GuestResult":
        """Boot, run the script, power off; the result once qemu has exited (killed past timeout_s)."""
        return self.finish(self.start())

    def finish(self, process: subprocess.Popen) -> "GuestResult":
        try:
            qemu_output, _ = process.communicate(timeout=max(1.0, self.timeout_s - (time.monotonic() - self.started)))
            timed_out = False
        except subprocess.TimeoutExpired:
            kill(process)
            qemu_output, _ = process.communicate()
            timed_out = True
        return GuestResult(self.directory, process.returncode, timed_out, qemu_output.decode(errors="replace"),
                           time.monotonic() - self.started)


def kill(process: subprocess.Popen) -> None:
    """Pull the plug: SIGKILL to qemu, no shutdown of any kind in the guest."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class GuestResult:
    directory: Path
    qemu_status: int
    timed_out: bool
    qemu_output: str
    seconds: float

    @property
    def exit_status(self) -> int | None:
        """The script's exit status; None when it never finished (guest crashed, hung or was killed)."""
        path = self.directory / "exit-status"
        return int(path.read_text()) if path.exists() else None

    def read(self, name: str) -> str:
        path = self.directory / name
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnosis(self) -> str:
        """What the host saw of a boot that went wrong: qemu's output and the console's last lines."""
        console = [line for line in self.read("console.log").splitlines() if line.strip()][-60:]
        state = "timed out and was killed" if self.timed_out else f"qemu exited with {self.qemu_status}"
        return (f"guest {state} after {self.seconds:.0f} s (run directory {self.directory})\n"
                f"qemu: {self.qemu_output.strip() or '(no output)'}\nconsole, last lines:\n" + "\n".join(console))


def _unit_text() -> str:
    return f"""[Unit]
Description=tagd VM tier: the run's script
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
# The host's root carries /.dockerenv, so the guest's systemd believes it runs in a container and leaves / private
# instead of making it shared as it does on a real boot; without shared propagation LoadCredential= hands a
# DynamicUser= service an empty, root-only credentials directory. The guest is a VM: share / as systemd would.
ExecStartPre=/bin/mount --make-rshared /
ExecStart=/bin/sh -c 'sh {GUEST_SHARE}/run.sh > {GUEST_SHARE}/output.txt 2>&1; echo $? > {GUEST_SHARE}/exit-status.new; \
sync; mv {GUEST_SHARE}/exit-status.new {GUEST_SHARE}/exit-status'
StandardOutput=journal+console
TimeoutStartSec=infinity
"""


def _group_file() -> str:
    text = Path("/etc/group").read_text()
    if any(line.split(":")[0] == INPUT_GROUP for line in text.splitlines()):
        return text
    used = {int(line.split(":")[2]) for line in text.splitlines() if line.count(":") >= 3}
    gid = next(g for g in range(999, 100, -1) if g not in used)
    return text + f"{INPUT_GROUP}:x:{gid}:\n"


def _run_directory() -> Path:
    runs = CACHE / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune(runs, keep=6)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))


def _prune(runs: Path, keep: int) -> None:
    """Keep the last few run directories for post-mortems; older ones go."""
    for old in sorted(runs.iterdir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def shell_quote(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)
