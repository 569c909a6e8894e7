"""One exception tree for the whole package: callers catch TagdError and nothing broader."""


class TagdError(Exception):
    """Base class of every error tagd raises on purpose."""


class ConfigError(TagdError):
    """The configuration is unusable. Carries the file and key so the message can name both."""

    exit_status = 78  # EX_CONFIG from sysexits.h: systemd's RestartPreventExitStatus keys on it

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class DeviceError(TagdError):
    """A scanner or other device could not be opened, grabbed or read."""


class KeymapError(TagdError):
    """An XKB layout/variant could not be compiled into a keymap."""
