"""The one error type users see: what went wrong, why, and what to do."""


class LabError(Exception):
    """A failure the user can act on. Printed as one line, never a traceback."""

    def __init__(self, what: str, why: str = "", fix: str = ""):
        self.what, self.why, self.fix = what, why, fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [self.what]
        if self.why:
            parts.append(self.why)
        if self.fix:
            parts.append(self.fix)
        return " — ".join(parts)
