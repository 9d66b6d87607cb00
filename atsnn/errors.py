"""User-facing errors.

Every error a user can cause by bad input derives from :class:`AtsnnError`.
The CLI prints ``error: <message>`` on one line and exits with code 2 for
these; anything else is a bug and keeps its traceback. Messages name the
offending thing (file, key path, node, layer) and the limit it breaks.
"""


class AtsnnError(Exception):
    """Base class of all errors caused by user input."""


class ConfigError(AtsnnError, ValueError):
    """A hardware description or cost table is malformed or out of range.

    ``key_path`` is the dotted TOML key (``pe.data_memory_bytes``).
    """

    def __init__(self, message: str, *, key_path: str | None = None, source: str | None = None):
        self.key_path = key_path
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class NirImportError(AtsnnError, ValueError):
    """A NIR file or graph cannot be imported (unsupported node, bad shapes, cycle, ...)."""


class ConversionError(AtsnnError, ValueError):
    """An ANN description cannot be converted to an SNN."""


class QuantizationError(AtsnnError, ValueError):
    """A network cannot be expressed in the numeric contract."""


class MappingError(AtsnnError, ValueError):
    """A layer cannot be mapped onto the array; the message says what would fix it."""


class ProgramFormatError(AtsnnError, ValueError):
    """A saved Program is missing, corrupt or from an unsupported format version."""


class SimulationInputError(AtsnnError, ValueError):
    """Inputs or options given to the simulator are invalid (shape, dtype, NaN, T, policy)."""


class RtlError(AtsnnError, RuntimeError):
    """Verilog export, lint or synthesis failed for a user-visible reason."""
