"""A small re-implementation of spf13/pflag parsing semantics.

The real docker, kind, kubectl and flux CLIs all parse flags with cobra/pflag,
so they share the same error texts; the tool modules only add their own
prefix/suffix ("See 'docker run --help'.", "error: ", "ERROR: ", "✗ ").
"""


class FlagError(Exception):
    """A pflag-style parse error; str() is the pflag message."""


class Flag:
    def __init__(self, name, short=None, kind="str", default=None, dest=None):
        # kind: bool | str | list (repeatable / stringArray / stringSlice) | int | count
        self.name = name
        self.short = short
        self.kind = kind
        self.dest = dest or name.replace("-", "_")
        if default is None:
            default = {"bool": False, "list": [], "count": 0}.get(kind)
        self.default = default

    def label(self):
        if self.short:
            return "-%s, --%s" % (self.short, self.name)
        return "--" + self.name


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(flag, value):
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FlagError('invalid argument "%s" for "%s" flag: strconv.ParseBool: parsing "%s": invalid syntax'
                    % (value, flag.label(), value))


class FlagSet:
    def __init__(self, flags, interspersed=True):
        self.flags = list(flags)
        self.by_name = {f.name: f for f in self.flags}
        self.by_short = {f.short: f for f in self.flags if f.short}
        self.interspersed = interspersed

    def defaults(self):
        out = {}
        for f in self.flags:
            d = f.default
            out[f.dest] = list(d) if isinstance(d, list) else d
        return out

    def _set(self, vals, seen, flag, value):
        seen.add(flag.dest)
        if flag.kind == "bool":
            vals[flag.dest] = parse_bool(flag, value) if value is not None else True
        elif flag.kind == "count":
            vals[flag.dest] = (vals[flag.dest] or 0) + 1 if value is None else int(value)
        elif flag.kind == "int":
            try:
                vals[flag.dest] = int(value)
            except ValueError:
                raise FlagError('invalid argument "%s" for "%s" flag: strconv.ParseInt: parsing "%s": invalid syntax'
                                % (value, flag.label(), value))
        elif flag.kind == "list":
            if flag.dest not in vals.get("__listset__", set()):
                vals.setdefault("__listset__", set()).add(flag.dest)
                vals[flag.dest] = []
            vals[flag.dest].append(value)
        else:
            vals[flag.dest] = value

    def parse(self, argv):
        """Return (values, positionals, after_dashdash).

        values has one key per flag dest plus '__seen__' (set of dests given
        explicitly). positionals excludes anything after '--', which is
        returned separately (None when there was no '--')."""
        vals = self.defaults()
        seen = set()
        pos = []
        rest = None
        i = 0
        n = len(argv)
        while i < n:
            a = argv[i]
            if a == "--":
                rest = argv[i + 1:]
                break
            if a.startswith("--") and len(a) > 2:
                body = a[2:]
                if body.startswith("-") or body.startswith("="):
                    raise FlagError("bad flag syntax: %s" % a)
                if "=" in body:
                    name, value = body.split("=", 1)
                else:
                    name, value = body, None
                f = self.by_name.get(name)
                if f is None:
                    raise FlagError("unknown flag: --%s" % name)
                if value is None and f.kind not in ("bool", "count"):
                    if i + 1 < n:
                        i += 1
                        value = argv[i]
                    else:
                        raise FlagError("flag needs an argument: --%s" % name)
                self._set(vals, seen, f, value)
            elif a.startswith("-") and len(a) > 1:
                shorts = a[1:]
                j = 0
                while j < len(shorts):
                    c = shorts[j]
                    f = self.by_short.get(c)
                    if f is None:
                        raise FlagError("unknown shorthand flag: '%s' in %s" % (c, a))
                    remainder = shorts[j + 1:]
                    if f.kind in ("bool", "count"):
                        if remainder.startswith("="):
                            self._set(vals, seen, f, remainder[1:])
                            break
                        self._set(vals, seen, f, None)
                        j += 1
                        continue
                    if remainder:
                        value = remainder[1:] if remainder.startswith("=") else remainder
                    elif i + 1 < n:
                        i += 1
                        value = argv[i]
                    else:
                        raise FlagError("flag needs an argument: '%s' in -%s" % (c, c))
                    self._set(vals, seen, f, value)
                    break
            else:
                pos.append(a)
                if not self.interspersed:
                    rest_pos = argv[i + 1:]
                    pos.extend(rest_pos)
                    break
            i += 1
        vals.pop("__listset__", None)
        vals["__seen__"] = seen
        return vals, pos, rest


def split_command(argv, global_fs, tree):
    """Walk a cobra-like command tree.

    tree: nested dict {word: subtree-or-None}. Global flags (with values) may
    precede or sit between command words. Returns (path, remaining_argv) where
    remaining_argv is argv with the command words removed (flags kept in place).
    Stops at the first positional that is not a known subcommand."""
    path = []
    node = tree
    remaining = []
    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        if a == "--":
            remaining.extend(argv[i:])
            break
        if a.startswith("-") and len(a) > 1:
            remaining.append(a)
            # does this (global) flag take a separate value?
            f = None
            if a.startswith("--"):
                body = a[2:]
                if "=" not in body:
                    f = global_fs.by_name.get(body)
            elif len(a) == 2:
                f = global_fs.by_short.get(a[1])
            if f is not None and f.kind not in ("bool", "count") and i + 1 < n:
                remaining.append(argv[i + 1])
                i += 1
            i += 1
            continue
        if isinstance(node, dict) and a in node:
            path.append(a)
            node = node[a]
            i += 1
            continue
        remaining.extend(argv[i:])
        break
    return path, remaining, node


def strip_globals(argv, global_fs, anywhere=True):
    """argv without global flags (and their values): the 'words' that
    FAKE_FAIL prefixes are matched against. anywhere=False strips only the
    flags before the first command word (docker: -l means --label in run)."""
    out = []
    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        if a == "--":
            out.extend(argv[i:])
            break
        if (anywhere or not out) and a.startswith("-") and len(a) > 1:
            f = None
            if a.startswith("--"):
                body = a[2:]
                f = global_fs.by_name.get(body.split("=", 1)[0])
                if f is not None and "=" in body:
                    i += 1
                    continue
            else:
                f = global_fs.by_short.get(a[1:2])
                if f is not None and len(a) > 2:
                    i += 1
                    continue
            if f is not None:
                i += 2 if f.kind not in ("bool", "count") else 1
                continue
        out.append(a)
        i += 1
    return out
