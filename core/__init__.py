"""The bottom layer, shared by every package: the one error root (``core.errors``), the
shape of a store that can forget a customer (``core.erasure``) and the one import of
compiled hot loops (``core.compiled``). It imports no other Maestro package."""
