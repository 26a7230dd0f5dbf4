"""gitops-lab: the library behind dodo.py, and the invoke collection (`inv --list`).

invoke looks for `ns` in this package; it is built lazily so that importing
tasks.core.config (as dodo.py does) does not load invoke's modules.
"""


def __getattr__(name):
    if name in ("ns", "namespace"):
        from tasks.inv import ns
        return ns
    raise AttributeError(name)
