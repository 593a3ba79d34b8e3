"""The strict JSON scalar reader of :mod:`training._columns` (inlined where cimported).

It takes only what it can read exactly as orjson does: strings without escapes or
control characters, ``true``/``false``/``null``, integers of at most 18 digits, and
finite numbers with a fraction or an exponent — read by Clinger's fast path (an
integer below 2**53 over an exact power of ten: one correctly rounded division) or by
the C library's correctly rounded ``strtod``. Anything else is ``_BAD``: the caller
leaves the text to orjson.

Reference: W. D. Clinger, *How to Read Floating Point Numbers Accurately*, PLDI 1990.
"""

from libc.errno cimport ERANGE, errno
from libc.math cimport isfinite
from libc.stdint cimport int64_t
from libc.stdlib cimport strtod
from libc.string cimport memcmp

cdef extern from *:
    """
    static const double maestro_pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    };
    """
    const double maestro_pow10[23]


cdef inline Py_ssize_t _ws(const char *s, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (s[i] == 32 or s[i] == 9 or s[i] == 10 or s[i] == 13):
        i += 1
    return i


cdef inline Py_ssize_t _string(const char *s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """End (the closing quote) of the string opening at ``s[i]``; -1 when it holds an
    escape or a control character, or does not end."""
    cdef char c
    i += 1
    while i < n:
        c = s[i]
        if c == 34:  # '"'
            return i
        if c == 92 or c < 32:  # backslash, control character
            return -1
        i += 1
    return -1


cdef inline bint _digit(char c) noexcept:
    return 48 <= c <= 57


# value kinds read by _value
cdef enum:
    _BAD = 0
    _NUMBER = 1
    _STRING = 2
    _TRUE = 3
    _FALSE = 4
    _NULL = 5


cdef struct _Read:
    int kind
    Py_ssize_t end  # one past the value
    Py_ssize_t start  # a string's first character
    double x  # a number's value


cdef inline _Read _value(const char *s, Py_ssize_t i, Py_ssize_t n, bint check) noexcept:
    """The scalar at ``s[i]`` (kind ``_BAD`` when it is not one this reader takes).
    ``check``: only whether it is one, a number's value left out unless needed."""
    cdef _Read r
    cdef Py_ssize_t j, k, digits, frac = 0
    cdef int64_t v
    cdef bint integer = True, exponent = False
    cdef char *end
    r.kind = _BAD
    r.end = r.start = i
    r.x = 0.0
    if i >= n:
        return r
    cdef char c = s[i]
    if c == 34:
        j = _string(s, i, n)
        if j >= 0:
            r.kind, r.start, r.end = _STRING, i + 1, j + 1
        return r
    if c == 116:  # true
        if i + 4 <= n and memcmp(s + i, b"true", 4) == 0:
            r.kind, r.end = _TRUE, i + 4
        return r
    if c == 102:  # false
        if i + 5 <= n and memcmp(s + i, b"false", 5) == 0:
            r.kind, r.end = _FALSE, i + 5
        return r
    if c == 110:  # null
        if i + 4 <= n and memcmp(s + i, b"null", 4) == 0:
            r.kind, r.end = _NULL, i + 4
        return r
    # number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    j = i
    if s[j] == 45:  # '-'
        j += 1
    if j < n and s[j] == 48:
        j += 1
    elif j < n and 49 <= s[j] <= 57:
        while j < n and _digit(s[j]):
            j += 1
    else:
        return r
    digits = j - i - (1 if s[i] == 45 else 0)
    if j < n and s[j] == 46:  # '.'
        integer = False
        j += 1
        if not (j < n and _digit(s[j])):
            return r
        while j < n and _digit(s[j]):
            j += 1
            frac += 1
    if j < n and (s[j] == 101 or s[j] == 69):  # e, E
        integer = False
        exponent = True
        j += 1
        if j < n and (s[j] == 43 or s[j] == 45):
            j += 1
        if not (j < n and _digit(s[j])):
            return r
        while j < n and _digit(s[j]):
            j += 1
    if integer:
        if digits > 18:
            return r
        v = 0
        for k in range(i + (1 if s[i] == 45 else 0), j):
            v = v * 10 + (s[k] - 48)
        r.x = <double>(-v if s[i] == 45 else v)  # as float(int): rounded to nearest
    elif check and not exponent:
        pass  # digits and a fraction: always a finite double, never an underflow
    elif not exponent and digits + frac <= 15 and frac <= 22:
        # Clinger's fast path: an integer below 2**53 over an exact power of ten, one
        # correctly rounded division, so the correctly rounded value (as strtod's)
        v = 0
        for k in range(i + (1 if s[i] == 45 else 0), j):
            if s[k] != 46:
                v = v * 10 + (s[k] - 48)
        r.x = <double>v / maestro_pow10[frac]
        if s[i] == 45:
            r.x = -r.x
    else:
        errno = 0
        r.x = strtod(s + i, &end)
        if end != s + j or errno == ERANGE or not isfinite(r.x):
            return r
    r.kind, r.end = _NUMBER, j
    return r
